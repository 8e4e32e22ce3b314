/// The type tag of a GGUF metadata value (`gguf_type` in the GGUF specification).
public enum GGUFValueType: UInt32, Sendable, CaseIterable {
    case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6, bool = 7
    case string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12

    /// Smallest number of bytes one value of this type takes in a file: the bound used to reject
    /// counts that cannot fit before anything is allocated.
    var minimumEncodedSize: Int {
        switch self {
        case .uint8, .int8, .bool: 1
        case .uint16, .int16: 2
        case .uint32, .int32, .float32: 4
        case .uint64, .int64, .float64: 8
        case .string: 8  // the length prefix
        case .array: 12  // element type + count
        }
    }

    /// Bytes one value takes in a file, for the types whose values all have the same size.
    var fixedSize: Int? {
        switch self {
        case .string, .array: nil
        default: minimumEncodedSize
        }
    }
}

/// One metadata value as read from a GGUF file. An array read from a file stays encoded in the
/// file's mapping until its elements are read (see `GGUFArray`): a vocabulary is ~100k values.
public enum GGUFValue: Sendable, Equatable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case uint64(UInt64), int64(Int64), float32(Float), float64(Double), bool(Bool), string(String)
    case array(elementType: GGUFValueType, values: GGUFArray)

    /// An array of decoded values, e.g. to build a file in a test.
    public static func array(elementType: GGUFValueType, values: [GGUFValue]) -> GGUFValue {
        .array(elementType: elementType, values: GGUFArray(values))
    }

    /// The value as an integer when it is one of the integer types and fits in `Int`.
    public var intValue: Int? {
        switch self {
        case .uint8(let v): Int(v)
        case .int8(let v): Int(v)
        case .uint16(let v): Int(v)
        case .int16(let v): Int(v)
        case .uint32(let v): Int(v)
        case .int32(let v): Int(v)
        case .uint64(let v): Int(exactly: v)
        case .int64(let v): Int(v)
        default: nil
        }
    }

    /// The value as a floating-point number when it is a float or an integer.
    public var doubleValue: Double? {
        switch self {
        case .float32(let v): Double(v)
        case .float64(let v): v
        default: intValue.map(Double.init)
        }
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    /// The elements of an array, all decoded. For a large array prefer the typed decoders of
    /// `GGUFArray` (or `GGUFFile.stringArray(_:)` and its siblings), which skip the `GGUFValue`s.
    public var arrayValue: [GGUFValue]? {
        if case .array(_, let values) = self { return Array(values) }
        return nil
    }

    /// A short rendering for summaries: arrays show their type and length, not their contents.
    public var summary: String {
        switch self {
        case .string(let s): s.count > 60 ? String(s.prefix(57)) + "..." : s
        case .bool(let b): String(b)
        case .array(let t, let values): "[\(t) × \(values.count)]"
        default: doubleValue.map { v in intValue.map(String.init) ?? String(v) } ?? ""
        }
    }
}
