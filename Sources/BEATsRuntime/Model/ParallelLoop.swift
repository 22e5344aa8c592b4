import Dispatch

/// Splits independent work (rows, heads, groups, GEMM bands) across a fixed number of threads.
/// With one thread the work runs inline, so single-threaded runs take no dispatch overhead.
struct ParallelLoop: Sendable {
    let threads: Int

    /// Calls `body(range)` for disjoint ranges covering `0..<count`, at most `threads` at once.
    func forEachChunk(_ count: Int, minimumChunk: Int = 1, _ body: (Range<Int>) -> Void) {
        forEachLane(count, lanes: min(threads, max(1, count / max(1, minimumChunk)))) { _, range in body(range) }
    }

    /// Calls `body(lane, range)` for at most `lanes` disjoint ranges covering `0..<count`, all at
    /// once; `lane` (0 ..< lanes) picks the caller's per-lane scratch.
    func forEachLane(_ count: Int, lanes: Int, _ body: (Int, Range<Int>) -> Void) {
        guard count > 0 else { return }
        let chunks = min(lanes, count)
        if chunks <= 1 {
            body(0, 0..<count)
            return
        }
        withoutActuallyEscaping(body) { body in
            let work = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                let start = count * chunk / chunks
                let end = count * (chunk + 1) / chunks
                work.value(chunk, start..<end)
            }
        }
    }
}

/// Carries a value the compiler cannot prove Sendable (raw pointers into the arena, closures
/// over them) into a parallel loop whose iterations touch disjoint memory.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
