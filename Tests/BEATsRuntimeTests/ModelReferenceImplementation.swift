import BEATsCore
import Foundation

/// A direct float64 transcription of the official forward pass (microsoft/unilm `beats/`:
/// BEATs.extract_features, Tokenizers.extract_labels, TransformerEncoder,
/// TransformerSentenceEncoderLayer, MultiheadAttention, NormEMAVectorQuantizer), with plain loops
/// and no fusion, so the optimised runtime can be checked on config branches the official
/// fixtures do not exercise. It is itself checked against the official fixtures.
struct ReferenceImplementation {
    let config: BEATsConfig
    let kind: ModelKind
    private let values: [String: [Double]]

    init(store: any WeightStore) throws {
        config = store.config
        kind = store.kind
        var values: [String: [Double]] = [:]
        for name in store.tensorNames {
            guard let view = try store.tensor(named: name), view.dtype.isFloatingPoint else { continue }
            values[name] = try view.doubles()
        }
        self.values = values
    }

    private func tensor(_ name: String) -> [Double] {
        guard let tensor = values[name] else { fatalError("reference: tensor \(name) missing") }
        return tensor
    }

    typealias Matrix = [[Double]]

    // MARK: Building blocks

    private func linear(_ x: Matrix, _ prefix: String) -> Matrix {
        let weight = tensor("\(prefix).weight"), bias = values["\(prefix).bias"]
        let inputs = x.first?.count ?? 0
        let outputs = weight.count / max(inputs, 1)
        return weight.withUnsafeBufferPointer { weight in
            x.map { row in
                row.withUnsafeBufferPointer { row in
                    (0..<outputs).map { o in
                        var sum = bias?[o] ?? 0
                        let base = o * inputs
                        for i in 0..<inputs { sum += weight[base + i] * row[i] }
                        return sum
                    }
                }
            }
        }
    }

    private func layerNorm(_ x: Matrix, _ prefix: String) -> Matrix {
        let gamma = tensor("\(prefix).weight"), beta = tensor("\(prefix).bias")
        return x.map { row in
            let mean = row.reduce(0, +) / Double(row.count)
            let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(row.count)
            return row.indices.map { (row[$0] - mean) / (variance + 1e-5).squareRoot() * gamma[$0] + beta[$0] }
        }
    }

    private static func gelu(_ x: Double) -> Double { 0.5 * x * (1 + Foundation.erf(x / 2.0.squareRoot())) }
    private static func sigmoid(_ x: Double) -> Double { 1 / (1 + Foundation.exp(-x)) }

    private func activate(_ x: Matrix) -> Matrix {
        switch config.activationFn {
        case "gelu": return x.map { $0.map(Self.gelu) }
        case "gelu_fast", "gelu_accurate":
            return x.map { $0.map { 0.5 * $0 * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * ($0 + 0.044715 * $0 * $0 * $0))) } }
        case "relu": return x.map { $0.map { max($0, 0) } }
        case "tanh": return x.map { $0.map { Foundation.tanh($0) } }
        case "linear": return x
        default: fatalError("reference: activation \(config.activationFn)")
        }
    }

    private func bucket(_ relative: Int) -> Int {
        let half = config.numBuckets / 2
        let maxExact = half / 2
        let distance = abs(relative)
        let base = relative > 0 ? half : 0
        if distance < maxExact { return base + distance }
        let large = maxExact + Int(Foundation.log(Double(distance) / Double(maxExact))
            / Foundation.log(Double(config.maxDistance) / Double(maxExact)) * Double(half - maxExact))
        return base + min(large, half - 1)
    }

    // MARK: Forward

    /// extract_features' encoder output [T][D].
    func encode(fbank: [Float], frames: Int) -> Matrix {
        let P = config.inputPatchSize, E = config.embedDim, D = config.encoderEmbedDim
        let timePatches = frames / P, frequencyPatches = 128 / P
        let patchWeight = tensor("patch_embedding.weight")
        let patchBias = config.convBias ? tensor("patch_embedding.bias") : nil
        var x: Matrix = (0..<(timePatches * frequencyPatches)).map { token in
            let (ti, fi) = (token / frequencyPatches, token % frequencyPatches)
            return (0..<E).map { e in
                var sum = patchBias?[e] ?? 0
                for r in 0..<P {
                    for c in 0..<P {
                        sum += patchWeight[e * P * P + r * P + c] * Double(fbank[(ti * P + r) * 128 + fi * P + c])
                    }
                }
                return sum
            }
        }
        x = layerNorm(x, "layer_norm")
        if E != D { x = linear(x, "post_extract_proj") }

        // Positional convolution with weight norm (dim 2), SamePad, GELU, added to the input.
        let T = x.count, K = config.convPos, groups = config.convPosGroups, c = D / groups, pad = K / 2
        var convWeight = values["encoder.pos_conv.0.weight"] ?? []
        if convWeight.isEmpty {
            let g = tensor("encoder.pos_conv.0.weight_g"), v = tensor("encoder.pos_conv.0.weight_v")
            var norms = [Double](repeating: 0, count: K)
            for (index, value) in v.enumerated() { norms[index % K] += value * value }
            convWeight = v.enumerated().map { index, value in g[index % K] * value / norms[index % K].squareRoot() }
        }
        let convBias = tensor("encoder.pos_conv.0.bias")
        let flatX = x.flatMap { $0 }
        let conv: Matrix = convWeight.withUnsafeBufferPointer { weight in
            flatX.withUnsafeBufferPointer { input in
                (0..<T).map { t in
                    (0..<D).map { o in
                        let group = o / c
                        var sum = convBias[o]
                        for ci in 0..<c {
                            for k in 0..<K {
                                let source = t + k - pad
                                if source >= 0 && source < T { sum += weight[(o * c + ci) * K + k] * input[source * D + group * c + ci] }
                            }
                        }
                        return Self.gelu(sum)
                    }
                }
            }
        }
        x = zip(x, conv).map { zip($0, $1).map { $0 + $1 } }
        if !config.layerNormFirst { x = layerNorm(x, "encoder.layer_norm") }

        let alpha = config.deepNorm ? Foundation.pow(Double(2 * config.encoderLayers), 0.25) : 1
        for layer in 0..<config.encoderLayers {
            let prefix = "encoder.layers.\(layer)"
            if config.layerNormFirst {
                let attention = attend(layerNorm(x, "\(prefix).self_attn_layer_norm"), prefix)
                x = zip(x, attention).map { zip($0, $1).map { $0 + $1 } }
                let ffn = feedForward(layerNorm(x, "\(prefix).final_layer_norm"), prefix)
                x = zip(x, ffn).map { zip($0, $1).map { $0 + $1 } }
            } else {
                let attention = attend(x, prefix)
                x = layerNorm(zip(x, attention).map { zip($0, $1).map { $0 * alpha + $1 } }, "\(prefix).self_attn_layer_norm")
                let ffn = feedForward(x, prefix)
                x = layerNorm(zip(x, ffn).map { zip($0, $1).map { $0 * alpha + $1 } }, "\(prefix).final_layer_norm")
            }
        }
        if config.layerNormFirst { x = layerNorm(x, "encoder.layer_norm") }
        return x
    }

    private func feedForward(_ x: Matrix, _ prefix: String) -> Matrix {
        if config.activationFn == "glu" {
            let both = linear(x, "\(prefix).fc1.linear")
            let F = config.encoderFFNEmbedDim
            let gated = both.map { row in (0..<F).map { row[$0] * row[F + $0] * Self.sigmoid(row[F + $0]) } }
            return linear(gated, "\(prefix).fc2")
        }
        return linear(activate(linear(x, "\(prefix).fc1")), "\(prefix).fc2")
    }

    private func attend(_ x: Matrix, _ prefix: String) -> Matrix {
        let T = x.count, D = config.encoderEmbedDim, H = config.encoderAttentionHeads, hd = D / H
        let q = linear(x, "\(prefix).self_attn.q_proj"), k = linear(x, "\(prefix).self_attn.k_proj")
        let v = linear(x, "\(prefix).self_attn.v_proj")
        let scaling = 1 / Double(hd).squareRoot()
        // One parameter shared by every layer in the official encoder; load_state_dict writes each
        // layer's copy into it in turn, so the last layer's copy is the one that runs.
        let relative = config.relativePositionEmbedding
            ? tensor("encoder.layers.\(config.encoderLayers - 1).self_attn.relative_attention_bias.weight") : nil
        let gated = config.relativePositionEmbedding && config.gruRelPos
        let gateWeight = gated ? tensor("\(prefix).self_attn.grep_linear.weight") : []
        let gateBias = gated ? tensor("\(prefix).self_attn.grep_linear.bias") : []
        let gateScale = gated ? tensor("\(prefix).self_attn.grep_a") : []
        var context = Matrix(repeating: [Double](repeating: 0, count: D), count: T)
        let flatK = k.flatMap { $0 }, flatV = v.flatMap { $0 }
        var scores = [Double](repeating: 0, count: T)
        for h in 0..<H {
            for i in 0..<T {
                let query = q[i][(h * hd)..<((h + 1) * hd)].map { $0 * scaling / 32 }
                flatK.withUnsafeBufferPointer { keys in
                    for j in 0..<T {
                        var dot = 0.0
                        for d in 0..<hd { dot += query[d] * keys[j * D + h * hd + d] }
                        scores[j] = dot
                    }
                }
                let top = scores.max() ?? 0
                for j in 0..<T { scores[j] = (scores[j] - top) * 32 }
                if let relative {
                    var gate = 1.0
                    if gated {
                        let unscaled = q[i][(h * hd)..<((h + 1) * hd)].map { $0 }
                        var projection = [Double](repeating: 0, count: 8)
                        for o in 0..<8 {
                            projection[o] = gateBias[o]
                            for d in 0..<hd { projection[o] += gateWeight[o * hd + d] * unscaled[d] }
                        }
                        let a = Self.sigmoid(projection[0] + projection[1] + projection[2] + projection[3])
                        let b = Self.sigmoid(projection[4] + projection[5] + projection[6] + projection[7])
                        gate = a * (b * gateScale[h] - 1) + 2
                    }
                    for j in 0..<T { scores[j] += gate * relative[bucket(j - i) * H + h] }
                }
                let peak = scores.max() ?? 0
                var sum = 0.0
                for j in 0..<T {
                    scores[j] = Foundation.exp(scores[j] - peak)
                    sum += scores[j]
                }
                var row = [Double](repeating: 0, count: hd)
                flatV.withUnsafeBufferPointer { values in
                    for j in 0..<T {
                        let weight = scores[j] / sum
                        for d in 0..<hd { row[d] += weight * values[j * D + h * hd + d] }
                    }
                }
                for d in 0..<hd { context[i][h * hd + d] = row[d] }
            }
        }
        return linear(context, "\(prefix).self_attn.out_proj")
    }

    /// Fine-tuned head: predictor per frame, mean over time, sigmoid.
    func probabilities(fbank: [Float], frames: Int) -> [Double] {
        let logits = linear(encode(fbank: fbank, frames: frames), "predictor")
        return (0..<(logits.first?.count ?? 0)).map { c in
            Self.sigmoid(logits.map { $0[c] }.reduce(0, +) / Double(logits.count))
        }
    }

    /// Tokenizer head: quantize_layer, L2 normalisation, nearest codebook row.
    func tokens(fbank: [Float], frames: Int) -> [Int64] {
        let hidden = linear(encode(fbank: fbank, frames: frames), "quantize_layer.0").map { $0.map { Foundation.tanh($0) } }
        let z = linear(hidden, "quantize_layer.2").map { row -> [Double] in
            let norm = max(row.map { $0 * $0 }.reduce(0, +).squareRoot(), 1e-12)
            return row.map { $0 / norm }
        }
        let codebook = tensor("quantize.embedding.weight")
        let dim = config.quantDim
        return z.map { row in
            var best = 0, bestDistance = Double.infinity
            for code in 0..<(codebook.count / dim) {
                var distance = 0.0
                for d in 0..<dim { distance += (row[d] - codebook[code * dim + d]) * (row[d] - codebook[code * dim + d]) }
                if distance < bestDistance { (best, bestDistance) = (code, distance) }
            }
            return Int64(best)
        }
    }
}
