// config.json is input: every wrong type, absurd size or bad epsilon is a thrown
// `ModelError.badConfig` naming the key — never a silent default, never an allocation trap
// (a layer count of 2^40 used to size per-layer arrays before anything checked it).
import DistilleryModel
import Foundation
import XCTest

final class ConfigValidationTests: XCTestCase {
    /// A valid minimal BERT config.json with keys replaced by raw JSON text (`changes`) or removed.
    func json(_ changes: [String: String] = [:], removing: [String] = []) -> String {
        var members: [String: String] = [
            "model_type": "\"bert\"", "vocab_size": "95", "hidden_size": "32", "num_hidden_layers": "2", "num_attention_heads": "4",
            "intermediate_size": "64", "max_position_embeddings": "64", "type_vocab_size": "2", "layer_norm_eps": "1e-12",
            "pad_token_id": "0", "hidden_act": "\"gelu\"",
        ]
        members.merge(changes) { $1 }
        for key in removing { members[key] = nil }
        return "{" + members.keys.sorted().map { "\"\($0)\": \(members[$0]!)" }.joined(separator: ", ") + "}"
    }

    /// Asserts the config is refused with a message containing every one of `words`.
    func refuses(_ changes: [String: String], _ words: [String], line: UInt = #line) {
        XCTAssertThrowsError(try BertConfig(json: json(changes), source: "config.json"), "\(changes)", line: line) { error in
            guard case .badConfig(let source, _, _)? = error as? ModelError else { return XCTFail("\(error)", line: line) }
            XCTAssertEqual(source, "config.json", line: line)
            for word in words { XCTAssertTrue("\(error)".contains(word), "'\(word)' in: \(error)", line: line) }
        }
    }

    func testAValidConfigStillReads() throws {
        let c = try BertConfig(json: json(["distillery_layer_heads": "[4, 2]", "distillery_layer_intermediate_sizes": "[64, 10]",
                                           "classifier_dropout": "null", "layer_norm_eps": "1e-5"]))
        XCTAssertEqual(c.layerHeads, [4, 2])
        XCTAssertEqual(c.layerIntermediateSizes, [64, 10])
        XCTAssertEqual(c.layerNormEps, 1e-5)
        XCTAssertEqual(try BertConfig(json: json(removing: ["layer_norm_eps", "hidden_act", "model_type"])).layerNormEps, 1e-12)
    }

    /// Text Foundation's parser lets through on Linux (it stops at a NUL byte) and bracket or
    /// string soup is refused with an error, not a trap (found by fuzz-config).
    func testTextThatIsNotJSONIsRefusedNotTrapped() {
        for text in ["\u{0} 2]", "\u{0}{\"a\": 1}", "]", "{\"a\": \"x}"] {
            XCTAssertThrowsError(try BertConfig(json: text, source: "config.json"), text.debugDescription)
        }
    }

    func testSizesOutOfRange() {
        refuses(["num_hidden_layers": "-1"], ["'num_hidden_layers' is -1", "1...1024"])
        refuses(["num_hidden_layers": "0"], ["'num_hidden_layers' is 0"])
        refuses(["num_hidden_layers": "1099511627776"], ["'num_hidden_layers' is 1099511627776"])
        refuses(["vocab_size": "1099511627776"], ["'vocab_size' is 1099511627776, above the limit"])
        refuses(["intermediate_size": "4611686018427387904"], ["'intermediate_size'", "above the limit"])
        refuses(["hidden_size": "-32"], ["'hidden_size' is -32", "positive"])
        refuses(["max_position_embeddings": "9223372036854775807"], ["'max_position_embeddings'", "above the limit"])
        refuses(["pad_token_id": "95"], ["'pad_token_id' is 95", "0..<95"])
        refuses(["pad_token_id": "-1"], ["'pad_token_id' is -1"])
        refuses(["distillery_layer_heads": "[4, 5]"], ["out of range"])
        refuses(["distillery_layer_intermediate_sizes": "[64, 1099511627776]"], ["out of range"])
    }

    func testLayerNormEpsilon() {
        for bad in ["0", "-1e-12", "1e-50"] {
            refuses(["layer_norm_eps": bad], ["'layer_norm_eps'", "> 0"])
        }
        refuses(["layer_norm_eps": "\"1e-12\""], ["'layer_norm_eps' is \"1e-12\", expected a number"])
        refuses(["layer_norm_eps": "true"], ["'layer_norm_eps' is true, expected a number"])
    }

    func testWrongTypesAreErrorsNotDefaults() {
        refuses(["hidden_size": "true"], ["'hidden_size' is true, expected an integer"])
        refuses(["hidden_size": "32.5"], ["'hidden_size' is 32.5, expected an integer"])
        refuses(["hidden_size": "32.0"], ["'hidden_size' is 32.0, expected an integer"])
        refuses(["num_attention_heads": "\"4\""], ["'num_attention_heads' is \"4\", expected an integer"])
        refuses(["pad_token_id": "null"], ["'pad_token_id' is null"])
        refuses(["hidden_act": "5"], ["'hidden_act' is 5, expected a string"])
        refuses(["model_type": "[\"bert\"]"], ["'model_type' is an array, expected a string"])
        refuses(["position_embedding_type": "null"], ["'position_embedding_type' is null"])
        refuses(["distillery_layer_heads": "\"4,4\""], ["'distillery_layer_heads'", "an array of 2 integers"])
        refuses(["distillery_layer_heads": "[4, true]"], ["'distillery_layer_heads'", "an array of 2 integers"])
        refuses(["distillery_layer_intermediate_sizes": "[64]"], ["'distillery_layer_intermediate_sizes'", "one per layer"])
        refuses(["hidden_dropout_prob": "true"], ["'hidden_dropout_prob' is true"])
        refuses(["id2label": "[\"0\", \"1\"]"], ["'id2label' is an array, expected an object"])
    }
}
