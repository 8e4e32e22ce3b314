import Foundation
import Testing
@testable import GGUF

/// The malformed files in Fixtures/ (written by make_fixtures.py with plain struct packing).
@Suite struct GGUFFixtureTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func path(_ name: String) -> String { fixtures.appendingPathComponent(name).path }

    /// Fixture → a phrase its error must contain.
    static let malformed: [(String, String)] = [
        ("empty.gguf", "too short"),
        ("magic-only.gguf", "too short"),
        ("header-truncated.gguf", "too short"),
        ("wrong-magic.gguf", "not a GGUF file"),
        ("version-1.gguf", "unsupported GGUF version 1"),
        ("version-99.gguf", "unsupported GGUF version 99"),
        ("huge-kv-count.gguf", "metadata count"),
        ("huge-tensor-count.gguf", "tensor count"),
        ("huge-string-length.gguf", "length 4611686018427387904 cannot fit"),
        ("huge-array-length.gguf", "array length"),
        ("bad-value-type.gguf", "invalid metadata value type 13"),
        ("bad-bool.gguf", "bool value 2"),
        ("nested-arrays.gguf", "nested too deeply"),
        ("duplicate-key.gguf", "duplicate metadata key"),
        ("bad-alignment.gguf", "not a power of two"),
        ("truncated-in-metadata.gguf", "cannot fit"),
        ("truncated-in-tensor-table.gguf", "truncated"),
        ("tensor-past-end.gguf", "past the end of the file"),
        ("tensor-data-truncated.gguf", "past the end of the file"),
        ("misaligned-tensor-offset.gguf", "not a multiple of the alignment"),
        ("too-many-dims.gguf", "5 dimensions"),
        ("dim-overflow.gguf", "overflows"),
        ("byte-size-overflow.gguf", "need more bytes than the whole file"),
        ("row-not-block-multiple.gguf", "not a multiple of the Q8_0 block size"),
        ("duplicate-tensor.gguf", "duplicate tensor name"),
    ]

    @Test(arguments: malformed)
    func malformedFileIsRefusedWithOffsetAndReason(fixture: String, phrase: String) throws {
        let p = Self.path(fixture)
        #expect(FileManager.default.fileExists(atPath: p), "fixture \(fixture) missing")
        let error = try #require(throws: GGUFError.self) { try GGUFFile(path: p) }
        #expect(error.isMalformed)
        #expect(error.description.contains(phrase), "\(error)")
        #expect(error.description.hasPrefix(p))
        #expect(error.offset != nil)
        #expect(!error.description.contains("\n"))
    }

    @Test func validSmallFileParses() throws {
        let f = try GGUFFile(path: Self.path("valid-small.gguf"))
        #expect(f.version == 3)
        #expect(f.string("general.architecture") == "llama")
        #expect(f.int("llama.block_count") == 1)
        #expect(f.tensors.map(\.name) == ["a", "b"])
        let a = try f.data(named: "a")
        #expect(a.count == 64)
        #expect(Array(a.prefix(4)) == [0, 1, 2, 3])
        let b = try #require(f.tensor(named: "b"))
        #expect(b.type == .q8_0)
        #expect(try f.data(for: b).count == 34)
        #expect(b.fileOffset == f.dataOffset + 64)
        #expect(f.dataOffset % f.alignment == 0)
    }

    @Test func notARegularFileIsRefused() throws {
        let error = try #require(throws: GGUFError.self) { try GGUFFile(path: Self.fixtures.path) }
        #expect(error.description.contains("not a regular file"))
        let missing = try #require(throws: GGUFError.self) { try GGUFFile(path: Self.path("no-such-file.gguf")) }
        #expect(missing.errno == ENOENT)
    }
}
