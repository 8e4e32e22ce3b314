/// A ggml tensor element type as stored in a GGUF tensor table (`ggml_type` in ggml.h).
///
/// The raw value is kept as read so that a file naming a type this build does not know still
/// parses; using such a tensor is what fails (see `GGUFTensorInfo.byteCount`).
public struct GGMLType: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32

    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Block layout of a known type: elements per block and bytes per block.
    public struct Layout: Hashable, Sendable {
        public let blockSize: Int
        public let bytesPerBlock: Int
    }

    private struct Entry {
        let name: String
        let layout: Layout
    }

    // ggml.h type ids with their block sizes and block byte counts (ggml-common.h).
    // Ids 4, 5, 31–33 and 36–38 were removed from ggml and are unknown here.
    private static let table: [UInt32: Entry] = [
        0: Entry(name: "F32", layout: Layout(blockSize: 1, bytesPerBlock: 4)),
        1: Entry(name: "F16", layout: Layout(blockSize: 1, bytesPerBlock: 2)),
        2: Entry(name: "Q4_0", layout: Layout(blockSize: 32, bytesPerBlock: 18)),
        3: Entry(name: "Q4_1", layout: Layout(blockSize: 32, bytesPerBlock: 20)),
        6: Entry(name: "Q5_0", layout: Layout(blockSize: 32, bytesPerBlock: 22)),
        7: Entry(name: "Q5_1", layout: Layout(blockSize: 32, bytesPerBlock: 24)),
        8: Entry(name: "Q8_0", layout: Layout(blockSize: 32, bytesPerBlock: 34)),
        9: Entry(name: "Q8_1", layout: Layout(blockSize: 32, bytesPerBlock: 36)),
        10: Entry(name: "Q2_K", layout: Layout(blockSize: 256, bytesPerBlock: 84)),
        11: Entry(name: "Q3_K", layout: Layout(blockSize: 256, bytesPerBlock: 110)),
        12: Entry(name: "Q4_K", layout: Layout(blockSize: 256, bytesPerBlock: 144)),
        13: Entry(name: "Q5_K", layout: Layout(blockSize: 256, bytesPerBlock: 176)),
        14: Entry(name: "Q6_K", layout: Layout(blockSize: 256, bytesPerBlock: 210)),
        15: Entry(name: "Q8_K", layout: Layout(blockSize: 256, bytesPerBlock: 292)),
        16: Entry(name: "IQ2_XXS", layout: Layout(blockSize: 256, bytesPerBlock: 66)),
        17: Entry(name: "IQ2_XS", layout: Layout(blockSize: 256, bytesPerBlock: 74)),
        18: Entry(name: "IQ3_XXS", layout: Layout(blockSize: 256, bytesPerBlock: 98)),
        19: Entry(name: "IQ1_S", layout: Layout(blockSize: 256, bytesPerBlock: 50)),
        20: Entry(name: "IQ4_NL", layout: Layout(blockSize: 32, bytesPerBlock: 18)),
        21: Entry(name: "IQ3_S", layout: Layout(blockSize: 256, bytesPerBlock: 110)),
        22: Entry(name: "IQ2_S", layout: Layout(blockSize: 256, bytesPerBlock: 82)),
        23: Entry(name: "IQ4_XS", layout: Layout(blockSize: 256, bytesPerBlock: 136)),
        24: Entry(name: "I8", layout: Layout(blockSize: 1, bytesPerBlock: 1)),
        25: Entry(name: "I16", layout: Layout(blockSize: 1, bytesPerBlock: 2)),
        26: Entry(name: "I32", layout: Layout(blockSize: 1, bytesPerBlock: 4)),
        27: Entry(name: "I64", layout: Layout(blockSize: 1, bytesPerBlock: 8)),
        28: Entry(name: "F64", layout: Layout(blockSize: 1, bytesPerBlock: 8)),
        29: Entry(name: "IQ1_M", layout: Layout(blockSize: 256, bytesPerBlock: 56)),
        30: Entry(name: "BF16", layout: Layout(blockSize: 1, bytesPerBlock: 2)),
        34: Entry(name: "TQ1_0", layout: Layout(blockSize: 256, bytesPerBlock: 54)),
        35: Entry(name: "TQ2_0", layout: Layout(blockSize: 256, bytesPerBlock: 66)),
        39: Entry(name: "MXFP4", layout: Layout(blockSize: 32, bytesPerBlock: 17)),
    ]

    public static let f32 = GGMLType(rawValue: 0)
    public static let f16 = GGMLType(rawValue: 1)
    public static let q4_0 = GGMLType(rawValue: 2)
    public static let q4_1 = GGMLType(rawValue: 3)
    public static let q8_0 = GGMLType(rawValue: 8)
    public static let q8_1 = GGMLType(rawValue: 9)
    public static let bf16 = GGMLType(rawValue: 30)

    /// Whether this build knows the type's block layout.
    public var isKnown: Bool { Self.table[rawValue] != nil }

    /// Block layout, or nil for an unknown type.
    public var layout: Layout? { Self.table[rawValue]?.layout }

    /// ggml's name for the type (`Q4_1`), or `type<N>` when unknown.
    public var name: String { Self.table[rawValue]?.name ?? "type\(rawValue)" }

    public var description: String { name }

    /// Every type this build knows, in id order.
    public static var allKnown: [GGMLType] { table.keys.sorted().map(GGMLType.init(rawValue:)) }
}
