/// Parses the header, metadata and tensor table of a GGUF (v2/v3) file held in memory.
/// Nothing is read before its bounds are checked against the file size. Metadata arrays are
/// checked in full here but left encoded in the mapping (`GGUFArray`), to be decoded when read.
struct GGUFParser {
    static let magic: UInt32 = 0x4655_4747  // "GGUF" read little-endian
    static let defaultAlignment = 32
    static let maxArrayNesting = 4
    static let maxDimensions = 4  // GGML_MAX_DIMS

    struct Result {
        var version: UInt32
        var metadataKeys: [String]
        var metadata: [String: GGUFValue]
        var tensors: [GGUFTensorInfo]
        var alignment: Int
        var dataOffset: Int
    }

    static func parse(_ mapping: GGUFMapping, path: String) throws -> Result {
        let bytes = mapping.bytes
        guard bytes.count >= 24 else { throw GGUFError.tooShort(path, size: bytes.count) }
        var r = ByteReader(bytes, path: path)
        let magic = try r.read(UInt32.self, "magic")
        guard magic == Self.magic else { throw GGUFError.badMagic(path, found: magic) }
        let version = try r.read(UInt32.self, "version")
        guard version == 2 || version == 3 else { throw GGUFError.unsupportedVersion(path, version: version) }

        // A tensor entry takes at least: name length (8) + n_dims (4) + one dim (8) + type (4) + offset (8).
        let tensorCount = try r.readCount("tensor count", minimumSize: 32)
        // A metadata entry takes at least: key length (8) + type (4) + a one-byte value.
        let kvCount = try r.readCount("metadata count", minimumSize: 13)

        var keys: [String] = []
        keys.reserveCapacity(kvCount)
        var metadata: [String: GGUFValue] = [:]
        metadata.reserveCapacity(kvCount)
        for i in 0..<kvCount {
            let entryOffset = r.offset
            let key = try r.readString("key of metadata entry \(i)")
            let typeOffset = r.offset
            let rawType = try r.read(UInt32.self, "value type of \"\(key)\"")
            guard let type = GGUFValueType(rawValue: rawType) else {
                throw GGUFError.invalidValueType(path, offset: typeOffset, raw: rawType, key: key)
            }
            let value = try readValue(&r, type: type, key: key, mapping: mapping)
            guard metadata.updateValue(value, forKey: key) == nil else {
                throw GGUFError.duplicateKey(path, offset: entryOffset, key: key)
            }
            keys.append(key)
        }

        var alignment = defaultAlignment
        if let a = metadata["general.alignment"] {
            guard case .uint32(let v) = a else {
                throw GGUFError.invalidAlignment(path, offset: r.offset, detail: "must be a uint32, found \(a.summary)")
            }
            guard v > 0, v & (v - 1) == 0 else {
                throw GGUFError.invalidAlignment(path, offset: r.offset, detail: "\(v) is not a power of two")
            }
            alignment = Int(v)
        }

        var tensors: [GGUFTensorInfo] = []
        tensors.reserveCapacity(tensorCount)
        var names = Set<String>()
        names.reserveCapacity(tensorCount)
        for i in 0..<tensorCount {
            let entryOffset = r.offset
            let name = try r.readString("name of tensor \(i)")
            let dimsOffset = r.offset
            let nDims = try r.read(UInt32.self, "dimension count of tensor \"\(name)\"")
            guard nDims >= 1, nDims <= UInt32(maxDimensions) else {
                throw GGUFError.invalidTensor(path, offset: dimsOffset, name: name,
                                              detail: "has \(nDims) dimensions (1 to \(maxDimensions) allowed)")
            }
            var dims: [Int] = []
            var elements = 1
            for d in 0..<Int(nDims) {
                let dimOffset = r.offset
                let raw = try r.read(UInt64.self, "dimension \(d) of tensor \"\(name)\"")
                guard raw <= UInt64(Int64.max), case let dim = Int(raw),
                      case let (product, overflow) = elements.multipliedReportingOverflow(by: dim), !overflow
                else {
                    throw GGUFError.invalidTensor(path, offset: dimOffset, name: name, detail: "dimension \(raw) overflows the element count")
                }
                elements = product
                dims.append(dim)
            }
            let type = GGMLType(rawValue: try r.read(UInt32.self, "type of tensor \"\(name)\""))
            let relOffsetAt = r.offset
            let relOffset = try r.read(UInt64.self, "data offset of tensor \"\(name)\"")
            guard relOffset <= UInt64(bytes.count) else {
                throw GGUFError.invalidTensor(path, offset: relOffsetAt, name: name,
                                              detail: "data offset \(relOffset) lies past the end of the file (\(bytes.count) bytes)")
            }
            guard Int(relOffset) % alignment == 0 else {
                throw GGUFError.invalidTensor(path, offset: relOffsetAt, name: name,
                                              detail: "data offset \(relOffset) is not a multiple of the alignment \(alignment)")
            }
            if let layout = type.layout {
                if dims[0] % layout.blockSize != 0 {
                    throw GGUFError.invalidTensor(path, offset: dimsOffset, name: name,
                                                  detail: "row length \(dims[0]) is not a multiple of the \(type) block size \(layout.blockSize)")
                }
                // The byte size must be representable before it is compared with the file size.
                var size = (dims[0] / layout.blockSize).multipliedReportingOverflow(by: layout.bytesPerBlock)
                for d in dims.dropFirst() where !size.overflow { size = size.partialValue.multipliedReportingOverflow(by: d) }
                if size.overflow || size.partialValue > bytes.count {
                    throw GGUFError.invalidTensor(path, offset: dimsOffset, name: name,
                                                  detail: "\(dims) \(type) elements need more bytes than the whole file (\(bytes.count))")
                }
            }
            guard names.insert(name).inserted else {
                throw GGUFError.duplicateTensor(path, offset: entryOffset, name: name)
            }
            tensors.append(GGUFTensorInfo(name: name, dimensions: dims, type: type, relativeOffset: Int(relOffset),
                                          fileOffset: 0, entryOffset: entryOffset))
        }

        let (aligned, overflow) = r.offset.addingReportingOverflow((alignment - r.offset % alignment) % alignment)
        let dataOffset = overflow ? Int.max : aligned
        if !tensors.isEmpty && dataOffset > bytes.count {
            throw GGUFError.truncated(path, offset: r.offset, needed: dataOffset - r.offset,
                                      reading: "padding before the tensor data", fileSize: bytes.count)
        }

        // Place every tensor and check that its bytes lie inside the file.
        for i in tensors.indices {
            let t = tensors[i]
            let start = dataOffset + t.relativeOffset
            if start > bytes.count {
                throw GGUFError.tensorOutOfBounds(path, offset: t.entryOffset, name: t.name, end: start, fileSize: bytes.count)
            }
            if let size = t.byteCount {
                let (end, overflow) = start.addingReportingOverflow(size)
                if overflow || end > bytes.count {
                    throw GGUFError.tensorOutOfBounds(path, offset: t.entryOffset, name: t.name,
                                                      end: overflow ? Int.max : end, fileSize: bytes.count)
                }
            }
            tensors[i] = GGUFTensorInfo(name: t.name, dimensions: t.dimensions, type: t.type,
                                        relativeOffset: t.relativeOffset, fileOffset: start, entryOffset: t.entryOffset)
        }

        return Result(version: version, metadataKeys: keys, metadata: metadata, tensors: tensors,
                      alignment: alignment, dataOffset: tensors.isEmpty ? min(dataOffset, bytes.count) : dataOffset)
    }

    private static func readValue(_ r: inout ByteReader, type: GGUFValueType, key: String, mapping: GGUFMapping) throws -> GGUFValue {
        switch type {
        case .uint8: return .uint8(try r.read(UInt8.self, "value of \"\(key)\""))
        case .int8: return .int8(try r.read(Int8.self, "value of \"\(key)\""))
        case .uint16: return .uint16(try r.read(UInt16.self, "value of \"\(key)\""))
        case .int16: return .int16(try r.read(Int16.self, "value of \"\(key)\""))
        case .uint32: return .uint32(try r.read(UInt32.self, "value of \"\(key)\""))
        case .int32: return .int32(try r.read(Int32.self, "value of \"\(key)\""))
        case .uint64: return .uint64(try r.read(UInt64.self, "value of \"\(key)\""))
        case .int64: return .int64(try r.read(Int64.self, "value of \"\(key)\""))
        case .float32: return .float32(try r.readFloat("value of \"\(key)\""))
        case .float64: return .float64(try r.readDouble("value of \"\(key)\""))
        case .bool: return .bool(try readBool(&r, key: key))
        case .string: return .string(try r.readString("value of \"\(key)\""))
        case .array:
            let (elementType, count, bytes) = try checkArray(&r, key: key, depth: 0)
            let encoded = GGUFArray.Encoded(mapping: mapping, elementType: elementType, count: count, bytes: bytes)
            return .array(elementType: elementType, values: GGUFArray(encoded))
        }
    }

    private static func readBool(_ r: inout ByteReader, key: String) throws -> Bool {
        let at = r.offset
        let b = try r.read(UInt8.self, "value of \"\(key)\"")
        guard b <= 1 else { throw GGUFError.invalidBool(r.path, offset: at, key: key, byte: b) }
        return b == 1
    }

    /// Reads an array's element type and count and steps over its elements, checking each as
    /// `readValue` would read it (string lengths, bools, nested arrays); returns where the
    /// elements lie.
    private static func checkArray(_ r: inout ByteReader, key: String, depth: Int) throws
        -> (elementType: GGUFValueType, count: Int, bytes: Range<Int>) {
        guard depth < maxArrayNesting else { throw GGUFError.nestingTooDeep(r.path, offset: r.offset, key: key) }
        let typeOffset = r.offset
        let rawType = try r.read(UInt32.self, "array element type of \"\(key)\"")
        guard let elementType = GGUFValueType(rawValue: rawType) else {
            throw GGUFError.invalidValueType(r.path, offset: typeOffset, raw: rawType, key: key)
        }
        let n = try r.readCount("array length of \"\(key)\"", minimumSize: elementType.minimumEncodedSize)
        let start = r.offset
        switch elementType {
        case .bool:
            for _ in 0..<n { _ = try readBool(&r, key: key) }
        case .string:
            for _ in 0..<n { _ = try r.readStringBytes("value of \"\(key)\"") }
        case .array:
            for _ in 0..<n { _ = try checkArray(&r, key: key, depth: depth + 1) }
        default:
            // `readCount` has checked that n values of this size fit.
            try r.skip(n * elementType.minimumEncodedSize, "value of \"\(key)\"")
        }
        return (elementType, n, start..<r.offset)
    }
}
