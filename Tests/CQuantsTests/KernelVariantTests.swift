import Foundation
import CQuants
import Testing

/// A vec-dot entry point as C exports it.
typealias DotFunction = @convention(c) (Int64, UnsafeRawPointer?, UnsafeRawPointer?) -> Float

/// One weight type with its activation type and the reference vec-dot.
struct DotKind: Sendable, CustomStringConvertible {
    let name: String
    let weightType: Int32
    let reference: DotFunction
    var activationType: Int32 { cq_vec_dot_type(weightType) }
    var isFloat: Bool { weightType == Int32(CQ_TYPE_F16) || weightType == Int32(CQ_TYPE_F32) }
    var description: String { name }

    static let all: [DotKind] = [
        DotKind(name: "q4_0_q8_0", weightType: Int32(CQ_TYPE_Q4_0), reference: cq_vec_dot_q4_0_q8_0_scalar),
        DotKind(name: "q4_1_q8_1", weightType: Int32(CQ_TYPE_Q4_1), reference: cq_vec_dot_q4_1_q8_1_scalar),
        DotKind(name: "q8_0_q8_0", weightType: Int32(CQ_TYPE_Q8_0), reference: cq_vec_dot_q8_0_q8_0_scalar),
        DotKind(name: "f16_f32", weightType: Int32(CQ_TYPE_F16), reference: cq_vec_dot_f16_f32_scalar),
        DotKind(name: "f32_f32", weightType: Int32(CQ_TYPE_F32), reference: cq_vec_dot_f32_f32_scalar),
    ]
}

/// A set of SIMD vec-dots (same order as DotKind.all), named after the path that introduced them,
/// and every kernel path whose table uses them.
struct KernelVariant: Sendable, CustomStringConvertible {
    let path: String
    let dots: [DotFunction]
    /// The kernel paths whose vec-dots these are: `path`, and any later path that kept them.
    var usedBy: [String] = []
    var description: String { path }
    func serves(_ kernelPath: String) -> Bool { kernelPath == path || usedBy.contains(kernelPath) }

    static var compiled: [KernelVariant] {
        var v: [KernelVariant] = []
        #if arch(x86_64)
        // The avx512-vnni path differs from avx2 in its repacked mat-mat only (C driver tests).
        v.append(KernelVariant(path: "avx2", dots: [
            cq_vec_dot_q4_0_q8_0_avx2, cq_vec_dot_q4_1_q8_1_avx2, cq_vec_dot_q8_0_q8_0_avx2,
            cq_vec_dot_f16_f32_avx2, cq_vec_dot_f32_f32_avx2,
        ], usedBy: ["avx512-vnni"]))
        #elseif arch(arm64)
        v.append(KernelVariant(path: "neon", dots: [
            cq_vec_dot_q4_0_q8_0_neon, cq_vec_dot_q4_1_q8_1_neon, cq_vec_dot_q8_0_q8_0_neon,
            cq_vec_dot_f16_f32_neon, cq_vec_dot_f32_f32_neon,
        ]))
        v.append(KernelVariant(path: "neon-dotprod", dots: [
            cq_vec_dot_q4_0_q8_0_neon_dotprod, cq_vec_dot_q4_1_q8_1_neon_dotprod, cq_vec_dot_q8_0_q8_0_neon_dotprod,
            cq_vec_dot_f16_f32_neon, cq_vec_dot_f32_f32_neon,
        ]))
        #endif
        return v
    }

    /// The compiled variants this CPU can run.
    static var runnable: [KernelVariant] { compiled.filter { cq_kernel_supported($0.path) == 1 } }
}

/// Error bounds of a SIMD vec-dot against the scalar reference, relative to sum |x_i * y_i| of
/// the dequantized operands. Block dots sum integers exactly in every variant and differ only in
/// the order of float accumulation; the float dots' reference accumulates in double.
enum DotErrorBound {
    static let quantized = 1e-5
    static let float = 1e-4
}

/// A weight row and an activation row in their storage types, with their dequantized values.
struct DotOperands {
    var weights: [UInt8]
    var activations: [UInt8]
    var weightValues: [Float]
    var activationValues: [Float]

    init(kind: DotKind, weights: [UInt8], activations: [UInt8], n: Int) {
        self.weights = weights
        self.activations = activations
        weightValues = [Float](repeating: 0, count: n)
        activationValues = [Float](repeating: 0, count: n)
        _ = cq_dequantize_row(kind.weightType, weights, &weightValues, Int64(n))
        _ = cq_dequantize_row(kind.activationType, activations, &activationValues, Int64(n))
    }

    /// Quantized from random floats, as the engine does.
    static func quantized(_ kind: DotKind, n: Int, rng: inout TestRandom, scale: Float = 2) -> DotOperands {
        let w = (0..<n).map { i in rng.unit() * scale * Float(1 + i % 5) }
        let a = (0..<n).map { _ in rng.unit() * 0.5 }
        return DotOperands(kind: kind, weights: quantize(kind.weightType, w), activations: quantize(kind.activationType, a), n: n)
    }

    /// Block rows with random quants (every byte value) under sane scales; `fill` forces every
    /// weight quant byte and every activation quant to one value instead (extremes).
    static func rawBlocks(_ kind: DotKind, n: Int, rng: inout TestRandom, weightFill: UInt8? = nil, activationFill: UInt8? = nil) -> DotOperands {
        let blocks = n / 32
        func fill(_ type: Int32, _ quantFill: UInt8?, rng: inout TestRandom) -> [UInt8] {
            let size = cq_row_size(type, Int64(n)) / blocks
            let header = type == Int32(CQ_TYPE_Q4_1) || type == Int32(CQ_TYPE_Q8_1) ? 4 : 2
            var out: [UInt8] = []
            for _ in 0..<blocks {
                let d = cq_f32_to_f16(0.001 + Float(rng.next() % 1000) * 1e-3)
                out += [UInt8(d & 0xff), UInt8(d >> 8)]
                if header == 4 {
                    let second = cq_f32_to_f16(rng.unit() * 40)
                    out += [UInt8(second & 0xff), UInt8(second >> 8)]
                }
                out += quantFill.map { [UInt8](repeating: $0, count: size - header) } ?? rng.bytes(size - header)
            }
            return out
        }
        return DotOperands(kind: kind, weights: fill(kind.weightType, weightFill, rng: &rng),
                           activations: fill(kind.activationType, activationFill, rng: &rng), n: n)
    }

    var magnitude: Double {
        zip(weightValues, activationValues).reduce(0.0) { $0 + abs(Double($1.0) * Double($1.1)) }
    }

    func dot(_ f: DotFunction, n: Int) -> Float {
        weights.withUnsafeBytes { w in activations.withUnsafeBytes { a in f(Int64(n), w.baseAddress, a.baseAddress) } }
    }
}

func quantize(_ type: Int32, _ x: [Float]) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: cq_row_size(type, Int64(x.count)))
    _ = cq_quantize_row(type, x, &out, Int64(x.count))
    return out
}

@Suite struct KernelVariantTests {
    static let quantLengths = [32, 64, 96, 160, 544, 576, 1536, 4096]
    static let floatLengths = [1, 3, 7, 15, 16, 17, 31, 33, 100, 576, 1537, 4096]

    @Test func thisMachineHasASIMDVariantToTest() {
        #if arch(x86_64) || arch(arm64)
        #expect(!KernelVariant.compiled.isEmpty)
        #endif
        let name = String(cString: cq_kernel_name())
        if let best = KernelVariant.runnable.last, ProcessInfo.processInfo.environment["OUTPOST_KERNEL"] == nil {
            #expect(best.serves(name), "\(name) is not served by \(best.path)")
        }
    }

    @Test(arguments: KernelVariant.runnable, DotKind.all)
    func variantMatchesScalarReference(variant: KernelVariant, kind: DotKind) {
        let index = DotKind.all.firstIndex { $0.name == kind.name }!
        var rng = TestRandom(seed: UInt64(index + 1) * 7919)
        let lengths = kind.isFloat ? Self.floatLengths : Self.quantLengths
        let bound = kind.isFloat ? DotErrorBound.float : DotErrorBound.quantized
        for n in lengths {
            var cases: [(String, DotOperands)] = [("quantized", .quantized(kind, n: n, rng: &rng))]
            if kind.isFloat {
                cases.append(("near F16 max", .quantized(kind, n: n, rng: &rng, scale: 13000)))
            } else {
                let low: UInt8 = kind.weightType == Int32(CQ_TYPE_Q8_0) ? 0x80 : 0x00
                let high: UInt8 = kind.weightType == Int32(CQ_TYPE_Q8_0) ? 0x7f : 0xff
                cases.append(("random bytes", .rawBlocks(kind, n: n, rng: &rng)))
                cases.append(("-128 x low extreme", .rawBlocks(kind, n: n, rng: &rng, weightFill: low, activationFill: 0x80)))
                cases.append(("-128 x high extreme", .rawBlocks(kind, n: n, rng: &rng, weightFill: high, activationFill: 0x80)))
                cases.append(("127 x high extreme", .rawBlocks(kind, n: n, rng: &rng, weightFill: high, activationFill: 0x7f)))
            }
            for (label, op) in cases {
                let want = op.dot(kind.reference, n: n)
                let got = op.dot(variant.dots[index], n: n)
                let limit = bound * op.magnitude
                #expect(abs(Double(got) - Double(want)) <= limit,
                        "\(variant.path) \(kind.name) n=\(n) \(label): got \(got), scalar \(want), bound \(limit)")
            }
        }
    }

    @Test(arguments: KernelVariant.runnable)
    func extremeBlocksGiveExactSums(variant: KernelVariant) {
        let blocks = 37, n = blocks * 32
        let one = cq_f32_to_f16(1)
        func block(_ header: [UInt16], _ fill: UInt8, _ count: Int) -> [UInt8] {
            header.flatMap { [UInt8($0 & 0xff), UInt8($0 >> 8)] } + [UInt8](repeating: fill, count: count)
        }
        let q8Min = (0..<blocks).flatMap { _ in block([one], 0x80, 32) }
        let q81Min = (0..<blocks).flatMap { _ in block([one, cq_f32_to_f16(-128 * 32)], 0x80, 32) }
        let q40Zero = (0..<blocks).flatMap { _ in block([one], 0x00, 16) }
        let q41Max = (0..<blocks).flatMap { _ in block([one, cq_f32_to_f16(0)], 0xff, 16) }
        func run(_ f: DotFunction, _ x: [UInt8], _ y: [UInt8]) -> Float {
            x.withUnsafeBytes { xp in y.withUnsafeBytes { yp in f(Int64(n), xp.baseAddress, yp.baseAddress) } }
        }
        #expect(run(variant.dots[2], q8Min, q8Min) == 16384 * Float(n))  // (-128)(-128)
        #expect(run(variant.dots[0], q40Zero, q8Min) == 1024 * Float(n)) // (0-8)(-128)
        #expect(run(variant.dots[1], q41Max, q81Min) == -1920 * Float(n)) // 15(-128)
    }

    @Test func dispatchedEntryPointsUseTheChosenVariant() {
        let name = String(cString: cq_kernel_name())
        guard let variant = KernelVariant.compiled.first(where: { $0.serves(name) }) else { return }
        let dispatched: [DotFunction] = [
            cq_vec_dot_q4_0_q8_0, cq_vec_dot_q4_1_q8_1, cq_vec_dot_q8_0_q8_0, cq_vec_dot_f16_f32, cq_vec_dot_f32_f32,
        ]
        var rng = TestRandom(seed: 5)
        for (i, kind) in DotKind.all.enumerated() {
            let op = DotOperands.quantized(kind, n: 576, rng: &rng)
            #expect(op.dot(dispatched[i], n: 576).bitPattern == op.dot(variant.dots[i], n: 576).bitPattern, "\(kind)")
        }
    }
}
