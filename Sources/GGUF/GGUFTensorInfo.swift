/// One entry of a GGUF tensor table.
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    /// Dimensions in ggml order: `dimensions[0]` is the row length (ne0).
    public let dimensions: [Int]
    public let type: GGMLType
    /// Offset of the tensor's data relative to the start of the data section.
    public let relativeOffset: Int
    /// Absolute offset of the tensor's data in the file.
    public let fileOffset: Int
    /// Where this entry starts in the file (for error messages).
    public let entryOffset: Int

    public var elementCount: Int { dimensions.reduce(1, *) }

    /// Number of rows (product of every dimension but the first).
    public var rowCount: Int { dimensions.dropFirst().reduce(1, *) }

    /// Bytes of one row, or nil for an unknown type.
    public var rowByteCount: Int? {
        guard let layout = type.layout else { return nil }
        return (dimensions.first ?? 1) / layout.blockSize * layout.bytesPerBlock
    }

    /// Bytes of the whole tensor, or nil for an unknown type.
    public var byteCount: Int? { rowByteCount.map { $0 * rowCount } }
}
