import CQuants
import GGUF
import OutpostTesting
import Testing

/// Rows of the default model (SmolLM2-135M Q4_1, token_embd in Q8_0) through our kernels.
@Suite struct RealModelRowsTests {
    static let tensors = ["blk.0.attn_q.weight", "blk.29.ffn_down.weight", "token_embd.weight"]

    /// Our dequantization of the first rows equals the gguf package's (scripts/gen-quant-fixtures.py).
    @Test(arguments: tensors)
    func dequantizedRowsMatchGGUFPackage(name: String) throws {
        let file = try GGUFFile(path: try TestModel.path())
        let info = try #require(file.tensor(named: name))
        let data = try file.data(for: info)
        let n = info.dimensions[0]
        let rowBytes = try #require(info.rowByteCount)
        #expect(cq_row_size(Int32(info.type.rawValue), Int64(n)) == rowBytes)
        let want = try Fixture.floats("model-\(name).rows0-3.f32")
        #expect(want.count == 4 * n)
        var got = [Float](repeating: .nan, count: 4 * n)
        for r in 0..<4 {
            got.withUnsafeMutableBufferPointer { out in
                _ = cq_dequantize_row(Int32(info.type.rawValue), data.baseAddress! + r * rowBytes, out.baseAddress! + r * n, Int64(n))
            }
        }
        #expect(got.map(\.bitPattern) == want.map(\.bitPattern))
    }

    /// Mat-vec over real tensors: every runnable variant agrees with the scalar reference within
    /// the named bound, and the quantized product is close to the float product of the
    /// dequantized weights.
    @Test(arguments: tensors)
    func matvecOnRealRows(name: String) throws {
        let file = try GGUFFile(path: try TestModel.path())
        let info = try #require(file.tensor(named: name))
        let data = try file.data(for: info)
        let type = Int32(info.type.rawValue)
        let n = info.dimensions[0], rows = min(info.rowCount, 256)
        let rowBytes = try #require(info.rowByteCount)
        let kind = try #require(DotKind.all.first { $0.weightType == type })
        let index = DotKind.all.firstIndex { $0.weightType == type }!
        var rng = TestRandom(seed: 2026)
        let x = (0..<n).map { _ in rng.unit() }
        let xq = quantize(kind.activationType, x)
        var y = [Float](repeating: 0, count: rows)
        #expect(cq_matvec(type, data.baseAddress, rowBytes, xq, &y, Int64(n), 0, Int64(rows)) == 0)
        var deq = [Float](repeating: 0, count: n)
        for r in 0..<rows {
            let row = data.baseAddress! + r * rowBytes
            _ = cq_dequantize_row(type, row, &deq, Int64(n))
            var exact = 0.0, mag = 0.0
            for i in 0..<n {
                exact += Double(deq[i]) * Double(x[i])
                mag += abs(Double(deq[i]) * Double(x[i]))
            }
            // Only the activation's 8-bit rounding separates these: well under 2% of sum |w x|.
            #expect(abs(Double(y[r]) - exact) <= 0.02 * mag, "\(name) row \(r): \(y[r]) vs \(exact)")
            let reference = xq.withUnsafeBytes { kind.reference(Int64(n), row, $0.baseAddress) }
            var xDeq = [Float](repeating: 0, count: n)
            _ = cq_dequantize_row(kind.activationType, xq, &xDeq, Int64(n))
            let quantMag = zip(deq, xDeq).reduce(0.0) { $0 + abs(Double($1.0) * Double($1.1)) }
            for variant in KernelVariant.runnable {
                let got = xq.withUnsafeBytes { variant.dots[index](Int64(n), row, $0.baseAddress) }
                #expect(abs(Double(got) - Double(reference)) <= DotErrorBound.quantized * quantMag,
                        "\(variant.path) \(name) row \(r): \(got) vs scalar \(reference)")
            }
        }
    }
}
