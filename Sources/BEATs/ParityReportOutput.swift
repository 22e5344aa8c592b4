import Foundation

extension ParityReport {
    /// The report as `beats verify` prints it: model, references, provenance, criteria, one row
    /// per clip (max/mean abs, cosine, top-5 or token agreement, PASS/FAIL) and a summary; the
    /// last line is `PASS` or `FAIL`.
    public func table() -> String {
        var lines: [String] = []
        lines.append("model       \(model) (\(modelFormat), \(kind.rawValue), \(precision.rawValue))")
        var made = "references  \(manifest): \(clips.count + skipped.count) clips from \(referenceCheckpoint)"
        if let torch = producer["torch"] { made += ", torch \(torch)" }
        lines.append(made)
        if let provenance {
            if provenance.passed {
                lines.append("provenance  ok: checkpoint sha256 \(provenance.referenceSHA256.prefix(16))… (\(provenance.modelSHA256Source)), kind and config match")
            } else {
                for failure in provenance.failures { lines.append("provenance  FAIL \(failure)") }
            }
        }
        lines.append("criteria    \(precision.rawValue) \(output.rawValue): \(criteriaSummary)")
        if !clips.isEmpty {
            let width = max(4, clips.map(\.name.count).max() ?? 4)
            lines.append(Self.pad("clip", width) + "  max abs     mean abs    cosine        agreement  result")
            for clip in clips {
                let m = clip.measurement
                var row = Self.pad(clip.name, width) + "  "
                row += Self.pad(m.maxAbsError.map { String(format: "%.3e", $0) } ?? "-", 10) + "  "
                row += Self.pad(m.meanAbsError.map { String(format: "%.3e", $0) } ?? "-", 10) + "  "
                row += Self.pad(m.cosine.map { String(format: "%.9f", $0) } ?? "-", 12) + "  "
                let agreement: String
                if let overlap = m.topOverlap, let count = m.topCount {
                    agreement = "top-\(count) \(overlap)/\(count)"
                } else if let tokens = m.tokenAgreement {
                    agreement = String(format: "%.2f %%", tokens * 100)
                } else {
                    agreement = "-"
                }
                row += Self.pad(agreement, 9) + "  " + (clip.error != nil ? "ERROR" : clip.passed ? "PASS" : "FAIL")
                lines.append(row)
                if let error = clip.error { lines.append("  error: \(error)") }
                for failure in m.failures { lines.append("  \(failure)") }
            }
        }
        var summary = "summary     \(passedCount) passed, \(failedCount) failed"
        if errorCount > 0 { summary += ", \(errorCount) could not run" }
        if !skipped.isEmpty { summary += ", \(skipped.count) not run (provenance failed)" }
        lines.append(summary + String(format: " (%.2f s)", seconds))
        lines.append(passed ? "PASS" : "FAIL")
        return lines.joined(separator: "\n") + "\n"
    }

    /// The report as one JSON object (snake_case keys, sorted), with `passed` and `exit_status`.
    public func json() throws -> String {
        try ParityJSON.encode(self, adding: [("passed", passed), ("exitStatus", exitStatus), ("passedCount", passedCount),
                                             ("failedCount", failedCount), ("errorCount", errorCount)])
    }

    /// The report as JUnit XML, as GitLab, Jenkins and GitHub test reporters read it: one
    /// `testsuite`, a `provenance` testcase, then one testcase per clip (`failure` with the
    /// numbers and the criteria, `error` when it could not run, `skipped` after a provenance
    /// failure); the criteria, precision and checkpoint as `properties`.
    public func junitXML(timestamp: Date = Date()) -> String {
        let suite = "beats verify \(model)"
        var cases: [String] = []
        if let provenance {
            var testcase = "    <testcase classname=\"\(XML.escape(suite))\" name=\"provenance\" time=\"0\""
            if provenance.passed {
                testcase += "/>"
            } else {
                let message = provenance.failures.joined(separator: "; ")
                testcase += ">\n      <failure type=\"provenance\" message=\"\(XML.escape(message))\">\(XML.escape(provenance.failures.joined(separator: "\n")))</failure>\n    </testcase>"
            }
            cases.append(testcase)
        }
        for clip in clips {
            var testcase = "    <testcase classname=\"\(XML.escape(suite))\" name=\"\(XML.escape(clip.name))\" time=\"\(String(format: "%.3f", clip.seconds))\""
            let numbers = Self.numbers(clip.measurement)
            if let error = clip.error {
                testcase += ">\n      <error type=\"error\" message=\"\(XML.escape(error))\">\(XML.escape(error))</error>\n    </testcase>"
            } else if !clip.passed {
                let message = clip.measurement.failures.joined(separator: "; ")
                let body = (clip.measurement.failures + [numbers, "criteria: \(criteriaSummary)"]).joined(separator: "\n")
                testcase += ">\n      <failure type=\"parity\" message=\"\(XML.escape(message))\">\(XML.escape(body))</failure>\n      <system-out>\(XML.escape(numbers))</system-out>\n    </testcase>"
            } else {
                testcase += ">\n      <system-out>\(XML.escape(numbers))</system-out>\n    </testcase>"
            }
            cases.append(testcase)
        }
        for name in skipped {
            cases.append("    <testcase classname=\"\(XML.escape(suite))\" name=\"\(XML.escape(name))\" time=\"0\">\n      <skipped message=\"not run: provenance failed\"/>\n    </testcase>")
        }
        let tests = cases.count
        let failures = failedCount + (provenance?.passed == false ? 1 : 0)
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        let properties = [
            ("model", model), ("model_format", modelFormat), ("precision", precision.rawValue), ("manifest", manifest),
            ("reference_checkpoint", referenceCheckpoint), ("criteria", "\(precision.rawValue) \(output.rawValue): \(criteriaSummary)"),
        ].map { "      <property name=\"\($0.0)\" value=\"\(XML.escape($0.1))\"/>" }
        let counts = "tests=\"\(tests)\" failures=\"\(failures)\" errors=\"\(errorCount)\" skipped=\"\(skipped.count)\" time=\"\(String(format: "%.3f", seconds))\""
        return """
            <?xml version="1.0" encoding="UTF-8"?>
            <testsuites name="beats verify" \(counts)>
              <testsuite name="\(XML.escape(suite))" \(counts) timestamp="\(formatter.string(from: timestamp))">
                <properties>
            \(properties.joined(separator: "\n"))
                </properties>
            \(cases.joined(separator: "\n"))
              </testsuite>
            </testsuites>

            """
    }

    /// JUnit XML for a run that could not start (bad manifest, missing file): one testcase
    /// `verify` with an `error`, so a CI report shows why instead of a missing file.
    public static func junitError(message: String, manifest: String, model: String) -> String {
        let suite = XML.escape("beats verify \(model)")
        return """
            <?xml version="1.0" encoding="UTF-8"?>
            <testsuites name="beats verify" tests="1" failures="0" errors="1" skipped="0" time="0">
              <testsuite name="\(suite)" tests="1" failures="0" errors="1" skipped="0" time="0">
                <testcase classname="\(suite)" name="\(XML.escape(manifest))" time="0">
                  <error type="error" message="\(XML.escape(message))">\(XML.escape(message))</error>
                </testcase>
              </testsuite>
            </testsuites>

            """
    }

    /// The clip's numbers in one line, for JUnit bodies.
    static func numbers(_ m: ParityMeasurement) -> String {
        var parts: [String] = []
        if let value = m.maxAbsError { parts.append(String(format: "max_abs_error=%.6e", value)) }
        if let value = m.meanAbsError { parts.append(String(format: "mean_abs_error=%.6e", value)) }
        if let value = m.cosine { parts.append(String(format: "cosine=%.9f", value)) }
        if let overlap = m.topOverlap, let count = m.topCount { parts.append("top\(count)_overlap=\(overlap)/\(count)") }
        if let value = m.tokenAgreement { parts.append(String(format: "token_agreement=%.6f", value)) }
        if let ours = m.truthMaxAbsError, let torch = m.referenceTruthMaxAbsError {
            parts.append(String(format: "truth_max_abs_error=%.6e torch_truth_max_abs_error=%.6e", ours, torch))
        }
        if let ours = m.truthMeanAbsError, let torch = m.referenceTruthMeanAbsError {
            parts.append(String(format: "truth_mean_abs_error=%.6e torch_truth_mean_abs_error=%.6e", ours, torch))
        }
        return parts.joined(separator: " ")
    }

    static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }
}

/// JSON as `verify` and `compare` print it: snake_case keys, sorted, one line.
enum ParityJSON {
    static func encode(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// `value`'s JSON object with `extras` (computed properties) as further keys.
    static func encode(_ value: some Encodable, adding extras: [(String, any Encodable)]) throws -> String {
        try encode(Extended(value: value, extras: extras))
    }

    private struct Extended<Value: Encodable>: Encodable {
        let value: Value
        let extras: [(String, any Encodable)]

        func encode(to encoder: any Encoder) throws {
            try value.encode(to: encoder)
            var container = encoder.container(keyedBy: Key.self)
            for (key, extra) in extras { try container.encode(extra, forKey: Key(key)) }
        }
    }
}

/// A coding key made from a string.
struct Key: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// Text as XML 1.0 character data or an attribute value.
enum XML {
    /// Escapes markup characters and drops what XML 1.0 cannot hold (C0 controls but tab,
    /// newline and carriage return; U+FFFE/FFFF), so any message makes a valid document.
    static func escape(_ text: String) -> String {
        var output = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": output += "&amp;"
            case "<": output += "&lt;"
            case ">": output += "&gt;"
            case "\"": output += "&quot;"
            case "'": output += "&apos;"
            case "\t", "\n", "\r": output.unicodeScalars.append(scalar)
            default:
                if scalar.value < 0x20 || scalar.value == 0xFFFE || scalar.value == 0xFFFF { continue }
                output.unicodeScalars.append(scalar)
            }
        }
        return output
    }
}
