import CQuants
import Testing

@Suite struct CQuantsBasicsTests {
    @Test func blockSizesMatchGGML() {
        #expect(MemoryLayout<cq_block_q4_0>.size == 18)
        #expect(MemoryLayout<cq_block_q4_1>.size == 20)
        #expect(MemoryLayout<cq_block_q8_0>.size == 34)
        #expect(MemoryLayout<cq_block_q8_1>.size == 36)
        #expect(cq_row_size(Int32(CQ_TYPE_Q4_1), 576) == 18 * 20)
        #expect(cq_row_size(Int32(CQ_TYPE_Q8_0), 33) == 0)
        #expect(cq_row_size(Int32(CQ_TYPE_F16), 33) == 66)
        #expect(cq_row_size(7, 32) == 0)
    }

    @Test func vecDotTypes() {
        #expect(cq_vec_dot_type(Int32(CQ_TYPE_Q4_0)) == Int32(CQ_TYPE_Q8_0))
        #expect(cq_vec_dot_type(Int32(CQ_TYPE_Q4_1)) == Int32(CQ_TYPE_Q8_1))
        #expect(cq_vec_dot_type(Int32(CQ_TYPE_Q8_0)) == Int32(CQ_TYPE_Q8_0))
        #expect(cq_vec_dot_type(Int32(CQ_TYPE_F16)) == Int32(CQ_TYPE_F32))
        #expect(cq_vec_dot_type(Int32(CQ_TYPE_F32)) == Int32(CQ_TYPE_F32))
        #expect(cq_vec_dot_type(6) == -1)
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
