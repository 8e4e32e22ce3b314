/// The elements of a GGUF metadata array.
///
/// An array read from a file is not decoded at open: it is a reference to its encoded bytes in the
/// file's mapping (element type, count, byte range), checked in full by the parser (lengths,
/// nesting, bools), and decoded element by element as it is read. A vocabulary of 262,144 tokens
/// thus costs one small object while the file is open instead of tens of megabytes of values. The
/// array holds the `GGUFMapping`, so it stays readable after its `GGUFFile` is released (the file
/// must not be rewritten while mapped, as for tensor data).
///
/// Arrays built in code (`GGUFArray([...])`, `GGUFValue.array(elementType:values:)`) hold their
/// values. Both kinds compare equal when their elements do.
///
/// A `Collection` of `GGUFValue` with an opaque index (strings vary in length, so the n-th element
/// is found by walking to it): `count` is O(1); use `Array(values)` for random access, or the typed
/// decoders (`stringValues()`, `intValues()`, `floatValues()`), which read the bytes directly.
public struct GGUFArray: Collection, Sendable, Equatable, CustomStringConvertible {
    public struct Index: Comparable, Sendable {
        /// The element's position in the array.
        let position: Int
        /// Where the element starts in the mapping (encoded arrays only).
        let byteOffset: Int

        public static func < (a: Index, b: Index) -> Bool { a.position < b.position }
        public static func == (a: Index, b: Index) -> Bool { a.position == b.position }
    }

    enum Storage: Sendable {
        case decoded([GGUFValue])
        case encoded(Encoded)
    }

    /// The encoded elements of an array in a file's mapping. A class so that `GGUFValue` stays
    /// two words; every field was checked against the file by the parser.
    final class Encoded: Sendable {
        let mapping: GGUFMapping
        let elementType: GGUFValueType
        let count: Int
        /// Absolute offsets, in the mapping, of the elements' bytes (after the type and count).
        let bytes: Range<Int>

        init(mapping: GGUFMapping, elementType: GGUFValueType, count: Int, bytes: Range<Int>) {
            self.mapping = mapping
            self.elementType = elementType
            self.count = count
            self.bytes = bytes
        }
    }

    let storage: Storage

    public init(_ values: [GGUFValue]) { storage = .decoded(values) }

    init(_ encoded: Encoded) { storage = .encoded(encoded) }

    public var count: Int {
        switch storage {
        case .decoded(let values): values.count
        case .encoded(let e): e.count
        }
    }

    public var isEmpty: Bool { count == 0 }

    public var startIndex: Index {
        switch storage {
        case .decoded: Index(position: 0, byteOffset: 0)
        case .encoded(let e): Index(position: 0, byteOffset: e.bytes.lowerBound)
        }
    }

    public var endIndex: Index {
        switch storage {
        case .decoded(let values): Index(position: values.count, byteOffset: 0)
        case .encoded(let e): Index(position: e.count, byteOffset: e.bytes.upperBound)
        }
    }

    public func index(after i: Index) -> Index {
        switch storage {
        case .decoded: return Index(position: i.position + 1, byteOffset: 0)
        case .encoded(let e):
            precondition(i.position < e.count, "GGUFArray index out of range")
            let size = Self.encodedSize(e.elementType, at: i.byteOffset, in: e.mapping.base)
            return Index(position: i.position + 1, byteOffset: i.byteOffset + size)
        }
    }

    public subscript(i: Index) -> GGUFValue {
        switch storage {
        case .decoded(let values): return values[i.position]
        case .encoded(let e):
            precondition(i.position >= 0 && i.position < e.count, "GGUFArray index out of range")
            return Self.decode(e.elementType, at: i.byteOffset, in: e.mapping)
        }
    }

    public var description: String { Array(self).description }

    public static func == (a: GGUFArray, b: GGUFArray) -> Bool {
        if case .encoded(let x) = a.storage, case .encoded(let y) = b.storage,
           x === y || (x.mapping === y.mapping && x.bytes == y.bytes && x.elementType == y.elementType) {
            return true  // the same bytes (as `Array` does for a shared buffer)
        }
        return a.count == b.count && a.elementsEqual(b)
    }

    // MARK: Typed decoding

    /// The elements as strings, decoded straight from the file's bytes; nil when an element is not
    /// a string.
    public func stringValues() -> [String]? {
        guard case .encoded(let e) = storage else { return Self.convert(self) { $0.stringValue } }
        guard e.elementType == .string else { return e.count == 0 ? [] : nil }
        let base = e.mapping.base
        var out: [String] = []
        out.reserveCapacity(e.count)
        var offset = e.bytes.lowerBound
        for _ in 0..<e.count {
            let length = Int(Self.load(UInt64.self, at: offset, in: base))
            out.append(String(decoding: UnsafeRawBufferPointer(start: base + offset + 8, count: length), as: UTF8.self))
            offset += 8 + length
        }
        return out
    }

    /// The elements as integers; nil when an element is not an integer or does not fit in `Int`.
    public func intValues() -> [Int]? {
        guard case .encoded(let e) = storage else { return Self.convert(self) { $0.intValue } }
        switch e.elementType {
        case .int32: return Self.loadAll(e) { (v: Int32) in Int(v) }
        case .uint32: return Self.loadAll(e) { (v: UInt32) in Int(v) }
        case .uint8, .int8, .uint16, .int16, .uint64, .int64: return Self.convert(self) { $0.intValue }
        default: return e.count == 0 ? [] : nil
        }
    }

    /// The elements as `Float`s (floats, or integers converted); nil when an element is neither.
    /// A float32 array is read straight from the file's bytes.
    public func floatValues() -> [Float]? {
        guard case .encoded(let e) = storage else { return Self.convert(self) { $0.doubleValue.map(Float.init) } }
        switch e.elementType {
        case .float32: return Self.loadAll(e) { (bits: UInt32) in Float(bitPattern: bits) }
        case .int32: return Self.loadAll(e) { (v: Int32) in Float(v) }
        case .string, .bool, .array: return e.count == 0 ? [] : nil
        default: return Self.convert(self) { $0.doubleValue.map(Float.init) }
        }
    }

    private static func convert<T>(_ values: GGUFArray, _ transform: (GGUFValue) -> T?) -> [T]? {
        var out: [T] = []
        out.reserveCapacity(values.count)
        for v in values {
            guard let t = transform(v) else { return nil }
            out.append(t)
        }
        return out
    }

    private static func loadAll<Raw: FixedWidthInteger, T>(_ e: Encoded, _ transform: (Raw) -> T) -> [T] {
        let base = e.mapping.base, start = e.bytes.lowerBound, stride = MemoryLayout<Raw>.size
        return (0..<e.count).map { transform(load(Raw.self, at: start + $0 * stride, in: base)) }
    }

    // MARK: Reading encoded elements (bounds were checked by the parser)

    private static func load<T: FixedWidthInteger>(_: T.Type, at offset: Int, in base: UnsafeRawPointer) -> T {
        T(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    /// Bytes taken by the encoded value of type `type` at `offset`.
    private static func encodedSize(_ type: GGUFValueType, at offset: Int, in base: UnsafeRawPointer) -> Int {
        if let size = type.fixedSize { return size }
        switch type {
        case .string:
            return 8 + Int(load(UInt64.self, at: offset, in: base))
        default:  // .array
            let elementType = GGUFValueType(rawValue: load(UInt32.self, at: offset, in: base))!
            let count = Int(load(UInt64.self, at: offset + 4, in: base))
            return 12 + elementsSize(elementType, count: count, at: offset + 12, in: base)
        }
    }

    private static func elementsSize(_ type: GGUFValueType, count: Int, at offset: Int, in base: UnsafeRawPointer) -> Int {
        if let size = type.fixedSize { return count * size }
        var end = offset
        for _ in 0..<count { end += encodedSize(type, at: end, in: base) }
        return end - offset
    }

    private static func decode(_ type: GGUFValueType, at offset: Int, in mapping: GGUFMapping) -> GGUFValue {
        let base = mapping.base
        switch type {
        case .uint8: return .uint8(load(UInt8.self, at: offset, in: base))
        case .int8: return .int8(load(Int8.self, at: offset, in: base))
        case .uint16: return .uint16(load(UInt16.self, at: offset, in: base))
        case .int16: return .int16(load(Int16.self, at: offset, in: base))
        case .uint32: return .uint32(load(UInt32.self, at: offset, in: base))
        case .int32: return .int32(load(Int32.self, at: offset, in: base))
        case .uint64: return .uint64(load(UInt64.self, at: offset, in: base))
        case .int64: return .int64(load(Int64.self, at: offset, in: base))
        case .float32: return .float32(Float(bitPattern: load(UInt32.self, at: offset, in: base)))
        case .float64: return .float64(Double(bitPattern: load(UInt64.self, at: offset, in: base)))
        case .bool: return .bool(load(UInt8.self, at: offset, in: base) == 1)
        case .string:
            let length = Int(load(UInt64.self, at: offset, in: base))
            return .string(String(decoding: UnsafeRawBufferPointer(start: base + offset + 8, count: length), as: UTF8.self))
        case .array:
            let elementType = GGUFValueType(rawValue: load(UInt32.self, at: offset, in: base))!
            let count = Int(load(UInt64.self, at: offset + 4, in: base))
            let start = offset + 12
            let end = start + elementsSize(elementType, count: count, at: start, in: base)
            return .array(elementType: elementType,
                          values: GGUFArray(Encoded(mapping: mapping, elementType: elementType, count: count, bytes: start..<end)))
        }
    }
}
