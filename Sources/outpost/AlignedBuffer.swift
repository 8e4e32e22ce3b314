import CQuants
import Inference

/// 64-byte-aligned memory for the benchmark. Fill it before timing anything: filling writes every
/// page, so measurements never take page faults.
final class AlignedBuffer: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let bytes: Int

    init(bytes: Int) {
        self.bytes = (bytes + 63) / 64 * 64
        base = UnsafeMutableRawPointer.allocate(byteCount: self.bytes, alignment: 64)
    }

    deinit { base.deallocate() }

    func fillRandom(mask: UInt64 = .max) {
        var rng = SplitMix64(seed: 1)
        let words = base.bindMemory(to: UInt64.self, capacity: bytes / 8)
        for i in 0..<bytes / 8 { words[i] = rng.next() & mask }
    }

    /// Random quants with small, finite scales (the kernels' speed does not depend on the values).
    func fillWeights(type: Int32) {
        switch type {
        case Int32(CQ_TYPE_F32): fillRandom(mask: 0xbf7f_ffff_bf7f_ffff) // |x| < 1
        case Int32(CQ_TYPE_F16): fillRandom(mask: 0xbbff_bbff_bbff_bbff) // |x| < 1
        default:
            fillRandom()
            guard let traits = cq_get_type_traits(type) else { return }
            let blockBytes = traits.pointee.type_size
            // Where each block keeps its f16 scale (d) and, for some types, a second f16 (m or dmin).
            let scaleOffset = type == Int32(CQ_TYPE_Q6_K) ? 208 : 0
            let hasSecondHalf = [CQ_TYPE_Q4_1, CQ_TYPE_Q5_1, CQ_TYPE_Q4_K, CQ_TYPE_Q5_K].contains(Int(type))
            var offset = 0
            while offset + blockBytes <= bytes {
                base.storeBytes(of: UInt16(0x2000), toByteOffset: offset + scaleOffset, as: UInt16.self) // d ≈ 0.0078
                if hasSecondHalf { base.storeBytes(of: UInt16(0xa000), toByteOffset: offset + 2, as: UInt16.self) }
                offset += blockBytes
            }
        }
    }
}
