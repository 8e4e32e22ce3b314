import Foundation
import Inference
import OutpostTesting
import Testing
@testable import GGUF

/// Random damage to real and synthetic files must give an error or a correct parse, never a
/// crash (a crash would take the whole test process down).
@Suite struct MutationTests {
    static func mutate(_ original: [UInt8], rng: inout SplitMix64) -> [UInt8] {
        var bytes = original
        let flips = Int.random(in: 1...8, using: &rng)
        for _ in 0..<flips {
            let i = Int.random(in: 0..<bytes.count, using: &rng)
            switch Int.random(in: 0..<3, using: &rng) {
            case 0: bytes[i] ^= UInt8(1 << Int.random(in: 0..<8, using: &rng))
            case 1: bytes[i] = UInt8.random(in: 0...255, using: &rng)
            default: bytes[i] = [0x00, 0xFF, 0x7F, 0x80].randomElement(using: &rng)!
            }
        }
        if Bool.random(using: &rng) {
            bytes.removeLast(Int.random(in: 0..<bytes.count, using: &rng))
        }
        return bytes
    }

    /// Parses `bytes`; the only acceptable outcomes are a `GGUFError` or a file whose every tensor
    /// lies inside the buffer and whose every array decodes (arrays are decoded when read, from
    /// bytes the parser checked).
    static func check(_ bytes: [UInt8]) -> Bool {
        do {
            let f = try GGUFFile(bytes: bytes, name: "mutant")
            for value in f.metadata.values where !decodesFully(value) { return false }
            for t in f.tensors {
                guard let size = t.byteCount else { continue }
                if t.fileOffset < f.dataOffset || t.fileOffset + size > bytes.count { return false }
                _ = try f.data(for: t)
            }
            return true
        } catch is GGUFError {
            return true
        } catch {
            return false
        }
    }

    /// Reads every element of an array (and of the arrays inside it), through each decoder.
    static func decodesFully(_ value: GGUFValue) -> Bool {
        guard case .array(_, let values) = value else { return true }
        _ = (values.stringValues(), values.intValues(), values.floatValues())
        var n = 0
        for element in values {
            guard decodesFully(element) else { return false }
            n += 1
        }
        return n == values.count
    }

    @Test func realModelHeadFlippedAndTruncated() throws {
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: try TestModel.path()))
        let head = [UInt8](try handle.read(upToCount: 64 * 1024) ?? Data())
        try handle.close()
        #expect(head.count == 64 * 1024)
        var rng = SplitMix64(seed: 0x0075_7470_6F73_7400)
        for iteration in 0..<2000 {
            let mutant = Self.mutate(head, rng: &rng)
            #expect(Self.check(mutant), "iteration \(iteration)")
        }
    }

    @Test func smallValidFileFlippedAndTruncated() throws {
        var w = GGUFWriter()
        w.add("general.architecture", .string("llama"))
        w.add("llama.block_count", .uint32(2))
        w.add("tokenizer.ggml.tokens", .array(elementType: .string, values: (0..<20).map { .string("tok\($0)") }))
        w.add("general.alignment", .uint32(32))
        w.addTensor("a", dims: [32, 2], type: 3, data: [UInt8](repeating: 3, count: 40))
        w.addTensor("b", dims: [8], type: 0, data: [UInt8](repeating: 0, count: 32))
        let original = w.bytes()
        #expect(Self.check(original))
        var rng = SplitMix64(seed: 42)
        var parsed = 0
        for iteration in 0..<4000 {
            let mutant = Self.mutate(original, rng: &rng)
            #expect(Self.check(mutant), "iteration \(iteration)")
            if (try? GGUFFile(bytes: mutant)) != nil { parsed += 1 }
        }
        // Some mutants (flips inside tensor data or string bytes) still parse: the test exercises both outcomes.
        #expect(parsed > 0)
    }
}
