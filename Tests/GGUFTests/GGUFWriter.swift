import Foundation
@testable import GGUF

/// Builds GGUF images in memory for tests: any metadata, any tensor table, with or without
/// correct padding.
struct GGUFWriter {
    var version: UInt32 = 3
    var alignment = 32
    private(set) var kv: [(String, GGUFValueType, [UInt8])] = []
    private(set) var tensors: [(name: String, dims: [Int], type: UInt32, data: [UInt8])] = []

    mutating func add(_ key: String, _ value: GGUFValue) {
        kv.append((key, Self.type(of: value), Self.encode(value)))
    }

    /// A value given as its encoded bytes, to write what `GGUFValue` cannot hold (bad lengths,
    /// invalid UTF-8, bool bytes other than 0 and 1).
    mutating func addRaw(_ key: String, _ type: GGUFValueType, _ encoded: [UInt8]) {
        kv.append((key, type, encoded))
    }

    mutating func addTensor(_ name: String, dims: [Int], type: UInt32, data: [UInt8]) {
        tensors.append((name, dims, type, data))
    }

    func bytes() -> [UInt8] {
        var out: [UInt8] = Array("GGUF".utf8)
        out += le(version)
        out += le(UInt64(tensors.count))
        out += le(UInt64(kv.count))
        for (key, type, encoded) in kv {
            out += Self.encodeString(key)
            out += le(type.rawValue)
            out += encoded
        }
        var offset = 0
        var placed: [Int] = []
        for t in tensors {
            placed.append(offset)
            offset += (t.data.count + alignment - 1) / alignment * alignment
        }
        for (t, off) in zip(tensors, placed) {
            out += Self.encodeString(t.name)
            out += le(UInt32(t.dims.count))
            for d in t.dims { out += le(UInt64(d)) }
            out += le(t.type)
            out += le(UInt64(off))
        }
        out += [UInt8](repeating: 0, count: (alignment - out.count % alignment) % alignment)
        for t in tensors {
            out += t.data
            out += [UInt8](repeating: 0, count: (alignment - t.data.count % alignment) % alignment)
        }
        return out
    }

    static func type(of v: GGUFValue) -> GGUFValueType {
        switch v {
        case .uint8: .uint8
        case .int8: .int8
        case .uint16: .uint16
        case .int16: .int16
        case .uint32: .uint32
        case .int32: .int32
        case .uint64: .uint64
        case .int64: .int64
        case .float32: .float32
        case .float64: .float64
        case .bool: .bool
        case .string: .string
        case .array: .array
        }
    }

    static func encodeString(_ s: String) -> [UInt8] { le(UInt64(s.utf8.count)) + Array(s.utf8) }

    static func encode(_ v: GGUFValue) -> [UInt8] {
        switch v {
        case .uint8(let x): [x]
        case .int8(let x): [UInt8(bitPattern: x)]
        case .uint16(let x): le(x)
        case .int16(let x): le(x)
        case .uint32(let x): le(x)
        case .int32(let x): le(x)
        case .uint64(let x): le(x)
        case .int64(let x): le(x)
        case .float32(let x): le(x.bitPattern)
        case .float64(let x): le(x.bitPattern)
        case .bool(let b): [b ? 1 : 0]
        case .string(let s): encodeString(s)
        case .array(let t, let values): le(t.rawValue) + le(UInt64(values.count)) + values.flatMap(encode)
        }
    }
}

func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] {
    withUnsafeBytes(of: v.littleEndian) { Array($0) }
}
