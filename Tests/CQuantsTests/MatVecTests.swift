import CQuants
import Testing

@Suite struct MatVecTests {
    static let weightTypes: [(String, Int32)] = [
        ("Q4_0", Int32(CQ_TYPE_Q4_0)), ("Q4_1", Int32(CQ_TYPE_Q4_1)), ("Q8_0", Int32(CQ_TYPE_Q8_0)),
        ("F16", Int32(CQ_TYPE_F16)), ("F32", Int32(CQ_TYPE_F32)),
    ]

    /// Relative error of a quantized mat-vec against the exact float product (sum |w x| scale):
    /// 4-bit weights with 8-bit activations lose far more than 8-bit weights or F16.
    static func productBound(_ type: Int32) -> Double {
        switch type {
        case Int32(CQ_TYPE_Q4_0), Int32(CQ_TYPE_Q4_1): return 0.1
        case Int32(CQ_TYPE_Q8_0): return 0.02
        default: return 1e-3
        }
    }

    @Test(arguments: weightTypes.map(\.0))
    func rowRangesComposeAndApproximateTheFloatProduct(name: String) {
        let type = Self.weightTypes.first { $0.0 == name }!.1
        let n = 576, rows = 41
        var rng = TestRandom(seed: 99)
        let x = (0..<n).map { _ in rng.unit() }
        let wf = (0..<n * rows).map { _ in rng.unit() * 0.1 }
        let rowBytes = cq_row_size(type, Int64(n))
        let w = (0..<rows).flatMap { r in quantize(type, Array(wf[r * n..<(r + 1) * n])) }
        let xq = quantize(cq_vec_dot_type(type), x)
        var y = [Float](repeating: -1, count: rows)
        var whole = [Float](repeating: -1, count: rows)
        #expect(cq_matvec(type, w, rowBytes, xq, &y, Int64(n), 3, 20) == 0)
        #expect(cq_matvec(type, w, rowBytes, xq, &y, Int64(n), 20, 38) == 0)
        #expect(cq_matvec(type, w, rowBytes, xq, &whole, Int64(n), 0, Int64(rows)) == 0)
        for r in 0..<rows {
            if r < 3 || r >= 38 {
                #expect(y[r] == -1, "row \(r) outside the ranges was written")
                continue
            }
            #expect(y[r].bitPattern == whole[r].bitPattern, "row \(r): split ranges differ from one range")
            var exact = 0.0, mag = 0.0
            for i in 0..<n {
                exact += Double(wf[r * n + i]) * Double(x[i])
                mag += abs(Double(wf[r * n + i]) * Double(x[i]))
            }
            #expect(abs(Double(y[r]) - exact) <= Self.productBound(type) * mag, "row \(r): \(y[r]) vs \(exact)")
        }
    }

    @Test func unsupportedTypeIsRefused() {
        var y: [Float] = [0]
        let w = [UInt8](repeating: 0, count: 64)
        // Q2_K (10): a ggml type CQuants does not run
        #expect(cq_matvec(10, w, 22, w, &y, 32, 0, 1) == -1)
        #expect(cq_quantize_row(10, [Float](repeating: 0, count: 32), &y, 32) == -1)
        // Q4_K: a weight type CQuants reads but does not make
        #expect(cq_quantize_row(Int32(CQ_TYPE_Q4_K), [Float](repeating: 0, count: 256), &y, 256) == -1)
    }
}
