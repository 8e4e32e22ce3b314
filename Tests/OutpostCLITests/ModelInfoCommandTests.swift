import Foundation
import OutpostTesting
import Testing

/// `outpost model info` run as a user runs it.
@Suite struct ModelInfoCommandTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("GGUFTests/Fixtures")

    @Test func jsonOnTheDefaultModel() throws {
        let r = try OutpostBinary.run(["model", "info", "--model", try TestModel.path(), "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(object["architecture"] as? String == "llama")
        #expect(object["parameters"] as? Int == 134_515_008)
        #expect(object["context_length"] as? Int == 8192)
        #expect(object["embedding_length"] as? Int == 576)
        #expect(object["layers"] as? Int == 30)
        #expect(object["heads"] as? Int == 9)
        #expect(object["kv_heads"] as? Int == 3)
        #expect(object["vocab_size"] as? Int == 49152)
        #expect(object["tensor_types"] as? [String: Int] == ["Q4_1": 210, "F32": 61, "Q8_0": 1])
        #expect(object["quantization"] as? String == "Q4_1")
        #expect(object["file_bytes"] as? Int == 98_362_432)
        let kernel = try #require(object["kernel"] as? String)
        #expect(["scalar", "avx2", "avx512-vnni", "neon", "neon-dotprod"].contains(kernel))
        #expect(object["name"] is String)
    }

    @Test func readableSummaryByDefault() throws {
        let r = try OutpostBinary.run(["model", "info", "--model", try TestModel.path()])
        #expect(r.status == 0)
        #expect(r.stdout.contains("llama"))
        #expect(r.stdout.contains("Q4_1×210"))
        #expect(r.stdout.contains("kernel:"))
    }

    @Test(arguments: ["empty.gguf", "wrong-magic.gguf", "huge-kv-count.gguf", "tensor-past-end.gguf",
                      "truncated-in-tensor-table.gguf", "nested-arrays.gguf"])
    func malformedFileExitsOneWithOneLine(fixture: String) throws {
        let path = Self.fixtures.appendingPathComponent(fixture).path
        let r = try OutpostBinary.run(["model", "info", "--model", path, "--json"])
        #expect(r.status == 1)
        #expect(r.stdout.isEmpty)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(r.stderr)")
        #expect(r.stderr.contains(path))
        #expect(r.stderr.contains("offset"))
    }

    @Test func missingFileAndDirectoryAreErrors() throws {
        let missing = try OutpostBinary.run(["model", "info", "--model", "/nonexistent/model.gguf"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("No such file"))
        let dir = try OutpostBinary.run(["model", "info", "--model", Self.fixtures.path])
        #expect(dir.status == 1)
        #expect(dir.stderr.contains("not a regular file"))
    }
}
