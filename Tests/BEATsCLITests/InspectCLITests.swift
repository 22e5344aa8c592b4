import BEATsTestSupport
import Foundation
import Testing

@Suite("beats inspect (command line)")
struct InspectCLITests {
    /// `list(torch.load('tiny.pt')['model'].keys())`.
    static let tinyKeys = [
        "post_extract_proj.weight", "post_extract_proj.bias", "patch_embedding.weight", "encoder.pos_conv.0.bias",
        "encoder.pos_conv.0.weight_g", "encoder.pos_conv.0.weight_v",
    ] + (0...1).flatMap { layer in
        let attention = ["grep_a"] + (layer == 0 ? ["relative_attention_bias.weight"] : []) + [
            "k_proj.weight", "k_proj.bias", "v_proj.weight", "v_proj.bias", "q_proj.weight", "q_proj.bias",
            "out_proj.weight", "out_proj.bias", "grep_linear.weight", "grep_linear.bias",
        ] + (layer == 1 ? ["relative_attention_bias.weight"] : [])
        return attention.map { "encoder.layers.\(layer).self_attn.\($0)" } + [
            "self_attn_layer_norm.weight", "self_attn_layer_norm.bias", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias",
            "final_layer_norm.weight", "final_layer_norm.bias",
        ].map { "encoder.layers.\(layer).\($0)" }
    } + ["encoder.layer_norm.weight", "encoder.layer_norm.bias", "layer_norm.weight", "layer_norm.bias"]

    @Test("--json on tiny.pt: the SPEC's keys, the state-dict keys in order, dtypes and shapes")
    func json() throws {
        let run = try CLI.beats(["inspect", try Fixtures.path("models/tiny.pt"), "--json"])
        #expect(run.status == 0)
        #expect(run.standardError.isEmpty)
        let object = try jsonObject(run)
        #expect(Set(object.keys) == ["format", "kind", "config", "labels", "tensors"])
        #expect(object["format"] as? String == "pytorch-zip")
        #expect(object["kind"] as? String == "pretrained")
        #expect(object["labels"] as? Int == 0)
        let config = try #require(object["config"] as? [String: Any])
        #expect(config["encoder_embed_dim"] as? Int == 64)
        #expect(config["activation_fn"] as? String == "gelu")
        #expect(config["deep_norm"] as? Bool == true)
        let tensors = try #require(object["tensors"] as? [[String: Any]])
        #expect(InspectCLITests.tinyKeys.count == 50)
        #expect(tensors.compactMap { $0["name"] as? String } == InspectCLITests.tinyKeys)
        #expect(tensors.allSatisfy { Set($0.keys) == ["name", "dtype", "shape"] && $0["dtype"] as? String == "float32" })
        #expect(tensors.first?["shape"] as? [Int] == [64, 48])
        #expect(tensors[2]["shape"] as? [Int] == [48, 1, 16, 16])
    }

    @Test("human output on tiny_ft.pt: format, kind, config, labels, rows and totals")
    func table() throws {
        let run = try CLI.beats(["inspect", try Fixtures.path("models/tiny_ft.pt")])
        #expect(run.status == 0)
        let lines = run.standardOutput.split(separator: "\n").map(String.init)
        #expect(lines.contains("format:  pytorch-zip"))
        #expect(lines.contains("kind:    finetuned"))
        #expect(lines.contains("labels:  527"))
        #expect(lines.contains { $0.hasPrefix("  predictor_class") && $0.hasSuffix(" 527") })
        #expect(lines.contains { $0.hasPrefix("  predictor.weight ") && $0.contains("float32  [527, 64]") && $0.hasSuffix("131.8 KiB") })
        #expect(lines.last == "total:   52 tensors, 133,847 elements, 522.8 KiB (535,388 bytes)")
    }

    @Test("evil.pt: exit status 1 and one 'error:' line naming the global")
    func evil() throws {
        let run = try CLI.beats(["inspect", try Fixtures.path("parser/evil.pt")])
        expectOneErrorLine(run, mentioning: ["error: pickle: forbidden global 'posix.system' at offset "])
        #expect(!FileManager.default.fileExists(atPath: "/tmp/beats-pwned"))
    }

    @Test("hostile files: exit status 1 and one 'error:' line each", arguments: [
        ("hostile/missing_record.pt", "record 'missing_record/data/0'"),
        ("hostile/short_record.pt", "holds 40 bytes"),
        ("hostile/overflow_shape.pt", "overflows"),
        ("parser/truncated.pt", "end-of-central-directory"),
    ])
    func hostile(fixture: String, fragment: String) throws {
        let run = try CLI.beats(["inspect", try Fixtures.path(fixture)])
        expectOneErrorLine(run, mentioning: [fragment])
    }

    @Test("a file that is no model: one error line with its first bytes")
    func notAModel() throws {
        let run = try CLI.beats(["inspect", try Fixtures.path("class_labels_indices.csv")])
        expectOneErrorLine(run, mentioning: ["first bytes: 69 6e 64 65"])
    }
}
