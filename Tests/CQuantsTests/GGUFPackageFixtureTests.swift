import CQuants
import Testing

/// Our quantizers and dequantizers against the PyPI gguf package's numpy implementation
/// (fixtures from scripts/gen-quant-fixtures.py): the same bytes, the same floats.
@Suite struct GGUFPackageFixtureTests {
    static let types: [(name: String, type: Int32)] = [
        ("q4_0", Int32(CQ_TYPE_Q4_0)), ("q4_1", Int32(CQ_TYPE_Q4_1)), ("q8_0", Int32(CQ_TYPE_Q8_0)),
    ]

    @Test(arguments: types.map(\.name))
    func quantizeMatchesGGUFByteForByte(name: String) throws {
        let type = Self.types.first { $0.name == name }!.type
        let input = try Fixture.floats("input.f32")
        let want = try Fixture.bytes("\(name).bin")
        #expect(cq_row_size(type, Int64(input.count)) == want.count)
        var got = [UInt8](repeating: 0, count: want.count)
        #expect(cq_quantize_row(type, input, &got, Int64(input.count)) == 0)
        let firstDifference = zip(got, want).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        #expect(firstDifference == nil, "first differing byte \(firstDifference ?? -1) of block \((firstDifference ?? 0) / (want.count / 64))")
    }

    @Test(arguments: types.map(\.name))
    func dequantizeMatchesGGUFBitForBit(name: String) throws {
        let type = Self.types.first { $0.name == name }!.type
        let blocks = try Fixture.bytes("\(name).bin")
        let want = try Fixture.floats("\(name).deq.f32")
        var got = [Float](repeating: .nan, count: want.count)
        #expect(cq_dequantize_row(type, blocks, &got, Int64(want.count)) == 0)
        #expect(got.map(\.bitPattern) == want.map(\.bitPattern))
    }

    @Test func f32ToF16MatchesNumpy() throws {
        let input = try Fixture.floats("input.f32")
        let want = try Fixture.halves("f16.bin")
        var got = [UInt16](repeating: 0, count: input.count)
        cq_f32_to_f16_row(input, &got, Int64(input.count))
        #expect(got == want)

        let edges = try Fixture.floats("f16-edge.f32")
        let edgeWant = try Fixture.halves("f16-edge.bin")
        for (x, h) in zip(edges, edgeWant) {
            #expect(cq_f32_to_f16(x) == h, "f32 \(x) (0x\(String(x.bitPattern, radix: 16)))")
        }
    }

    /// Every half, against Swift's own Float16 conversion.
    @Test func f16ToF32MatchesSwiftFloat16() {
        var bad = 0
        for bits in UInt16.min...UInt16.max {
            let ours = cq_f16_to_f32(bits)
            let swift = Float(Float16(bitPattern: bits))
            if swift.isNaN ? !ours.isNaN : ours.bitPattern != swift.bitPattern { bad += 1 }
        }
        #expect(bad == 0)
    }

    @Test func f32ToF16MatchesSwiftFloat16OnRandomBits() {
        var rng = TestRandom(seed: 42)
        var bad = 0
        for _ in 0..<100_000 {
            let f = Float(bitPattern: UInt32(truncatingIfNeeded: rng.next() >> 16))
            if f.isNaN { continue }
            if cq_f32_to_f16(f) != Float16(f).bitPattern { bad += 1 }
        }
        #expect(bad == 0)
    }
}
