import CQuants
import Foundation
import Testing

@Suite struct CQuantsBasicsTests {
    @Test func blockSizesMatchGGML() {
        #expect(MemoryLayout<cq_block_q4_0>.size == 18)
        #expect(MemoryLayout<cq_block_q4_1>.size == 20)
        #expect(MemoryLayout<cq_block_q8_0>.size == 34)
        #expect(MemoryLayout<cq_block_q8_1>.size == 36)
        #expect(MemoryLayout<cq_block_q5_0>.size == 22)
        #expect(MemoryLayout<cq_block_q5_1>.size == 24)
        #expect(MemoryLayout<cq_block_q4_K>.size == 144)
        #expect(MemoryLayout<cq_block_q5_K>.size == 176)
        #expect(MemoryLayout<cq_block_q6_K>.size == 210)
        #expect(MemoryLayout<cq_block_q8_K>.size == 292)
        #expect(cq_row_size(Int32(CQ_TYPE_Q4_K), 1536) == 6 * 144)
        #expect(cq_row_size(Int32(CQ_TYPE_Q4_K), 576) == 0) // not whole super-blocks
        #expect(cq_row_size(Int32(CQ_TYPE_Q5_0), 576) == 18 * 22)
        #expect(cq_row_size(Int32(CQ_TYPE_Q4_1), 576) == 18 * 20)
        #expect(cq_row_size(Int32(CQ_TYPE_Q8_0), 33) == 0)
        #expect(cq_row_size(Int32(CQ_TYPE_F16), 33) == 66)
        #expect(cq_row_size(10, 256) == 0) // Q2_K: not known here
        #expect(cq_row_size(99, 32) == 0)
    }

    @Test func vecDotTypes() {
        #expect(cq_vec_dot_type(Int32(CQ_TYPE_Q4_0)) == Int32(CQ_TYPE_Q8_0))
        #expect(cq_vec_dot_type(Int32(CQ_TYPE_Q4_1)) == Int32(CQ_TYPE_Q8_1))
        #expect(cq_vec_dot_type(Int32(CQ_TYPE_Q8_0)) == Int32(CQ_TYPE_Q8_0))
        #expect(cq_vec_dot_type(Int32(CQ_TYPE_F16)) == Int32(CQ_TYPE_F32))
        #expect(cq_vec_dot_type(Int32(CQ_TYPE_F32)) == Int32(CQ_TYPE_F32))
        #expect(cq_vec_dot_type(Int32(CQ_TYPE_Q5_0)) == Int32(CQ_TYPE_Q8_0))
        #expect(cq_vec_dot_type(Int32(CQ_TYPE_Q5_1)) == Int32(CQ_TYPE_Q8_1))
        for k in [CQ_TYPE_Q4_K, CQ_TYPE_Q5_K, CQ_TYPE_Q6_K] { #expect(cq_vec_dot_type(Int32(k)) == Int32(CQ_TYPE_Q8_K)) }
        #expect(cq_vec_dot_type(10) == -1)
        #expect(cq_vec_dot_type(Int32(CQ_TYPE_Q8_K)) == -1) // an activation type only
    }

    /// Every weight type of the table runs on the dispatched path, and the path's vec-dot agrees
    /// with the scalar reference on rows quantized from random floats (K types: random quants and
    /// scale bytes with sane f16 scales); the C driver tests every path at more lengths and extremes.
    @Test func everyWeightTypeRunsAndAgreesWithTheReference() throws {
        let path = String(cString: cq_kernel_name())
        var rng = SystemRandomNumberGenerator()
        let n = 1536
        for type in [CQ_TYPE_Q4_0, CQ_TYPE_Q4_1, CQ_TYPE_Q5_0, CQ_TYPE_Q5_1, CQ_TYPE_Q8_0, CQ_TYPE_Q4_K, CQ_TYPE_Q5_K, CQ_TYPE_Q6_K].map(Int32.init) {
            let traits = try #require(cq_get_type_traits(type)).pointee
            #expect(cq_type_supported(type) == 1, "\(String(cString: traits.name))")
            let dot = try #require(cq_vec_dot_variant(path, type)), ref = try #require(cq_vec_dot_variant("scalar", type))
            var w = [UInt8](repeating: 0, count: cq_row_size(type, Int64(n)))
            let x = (0..<n).map { _ in Float.random(in: -1...1, using: &rng) }
            if let quantize = traits.from_float_ref {
                quantize(x, &w, Int64(n))
            } else {
                for i in w.indices { w[i] = UInt8.random(in: 0...255, using: &rng) }
                let scale = UInt16(0x1c00) // f16 0.0039
                for b in 0..<(n / Int(traits.block_size)) {
                    let offsets = type == Int32(CQ_TYPE_Q6_K) ? [208] : [0, 2]
                    for o in offsets {
                        w[b * traits.type_size + o] = UInt8(scale & 0xff)
                        w[b * traits.type_size + o + 1] = UInt8(scale >> 8)
                    }
                }
            }
            let atype = cq_vec_dot_type(type)
            var a = [UInt8](repeating: 0, count: cq_row_size(atype, Int64(n)))
            #expect(cq_quantize_row(atype, Array(x.reversed()), &a, Int64(n)) == 0)
            var wf = [Float](repeating: 0, count: n), af = [Float](repeating: 0, count: n)
            #expect(cq_dequantize_row(type, w, &wf, Int64(n)) == 0)
            #expect(cq_dequantize_row(atype, a, &af, Int64(n)) == 0)
            let magnitude = zip(wf, af).reduce(0.0) { $0 + abs(Double($1.0) * Double($1.1)) }
            let want = ref(Int64(n), w, a), got = dot(Int64(n), w, a)
            var dispatched: Float = 0
            #expect(cq_vec_dot(type, Int64(n), w, a, &dispatched) == 0)
            #expect(dispatched == got)
            #expect(abs(Double(got) - Double(want)) <= 1e-5 * magnitude, "\(String(cString: traits.name)): \(got) vs \(want)")
            // and the dequantized product says the same, up to the activations' rounding
            let float = zip(wf, af).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            #expect(abs(Double(want) - float) <= 1e-4 * magnitude + 1e-6)
        }
    }

    @Test func kernelPathIsTheBestTheCPUHas() {
        let name = String(cString: cq_kernel_name())
        #expect(["neon-dotprod", "neon", "avx2", "avx512-vnni", "scalar"].contains(name))
        #expect(cq_kernel_supported("scalar") == 1)
        #expect(cq_kernel_supported("bogus") == 0)
        #if arch(x86_64)
        #expect(cq_kernel_supported("neon") == 0)
        #elseif arch(arm64)
        #expect(cq_kernel_supported("neon") == 1)
        #expect(cq_kernel_supported("avx2") == 0)
        #endif
        #expect(cq_kernel_select("bogus") != 0)
        #expect(String(cString: cq_kernel_name()) == name)
    }
}
