#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A GGUF file, memory-mapped read-only. Header, metadata and tensor table are parsed and checked
/// at open; tensor data is never copied: `data(for:)` hands out views into the mapping, which
/// stays valid for the life of the `GGUFFile`. Metadata arrays stay encoded in the mapping until
/// read (`GGUFArray`, which holds the mapping).
public final class GGUFFile: @unchecked Sendable {
    // @unchecked: every stored property is immutable after init and the mapping is read-only.
    public let path: String
    public let fileSize: Int
    public let version: UInt32
    /// Metadata keys in file order.
    public let metadataKeys: [String]
    /// Metadata by key. Arrays are not decoded: they refer to their bytes in `mapping`.
    public let metadata: [String: GGUFValue]
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    /// Absolute offset of the tensor data section.
    public let dataOffset: Int

    /// The file's bytes. Views from `data(for:)` stay valid while the mapping lives; holding the
    /// mapping alone (as a loaded model does) lets the parsed metadata be freed. Metadata arrays
    /// hold it too.
    public let mapping: GGUFMapping
    private var storage: GGUFMapping.Storage { mapping.storage }
    private let tensorIndex: [String: Int]

    /// Opens and maps `path`. Throws `GGUFError` for a file that cannot be opened or is malformed.
    public convenience init(path: String) throws {
        // O_NONBLOCK so that opening a FIFO by mistake cannot hang; it is refused below.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else {
            let e = errno
            throw GGUFError.cannotOpen(path, errno: e, reason: String(cString: strerror(e)))
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            throw GGUFError.cannotOpen(path, errno: e, reason: String(cString: strerror(e)))
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw GGUFError.notRegularFile(path) }
        let size = Int(st.st_size)
        guard size >= 24 else { throw GGUFError.tooShort(path, size: size) }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            let e = errno
            throw GGUFError.mapFailed(path, errno: e, reason: String(cString: strerror(e)))
        }
        // On a parse error the mapping is released, which unmaps the file.
        try self.init(mapping: GGUFMapping(storage: .mapped(p, size), count: size), path: path)
    }

    /// Parses a GGUF image held in memory (copied). `name` is used in error messages.
    public convenience init(bytes: some Collection<UInt8>, name: String = "") throws {
        let count = bytes.count
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 64)
        _ = buffer.initializeMemory(as: UInt8.self, from: bytes)
        // On a parse error the mapping is released, which frees the copy.
        try self.init(mapping: GGUFMapping(storage: .owned(buffer), count: count), path: name)
    }

    private init(mapping: GGUFMapping, path: String) throws {
        let parsed = try GGUFParser.parse(mapping, path: path)
        self.mapping = mapping
        self.path = path
        self.fileSize = mapping.bytes.count
        self.version = parsed.version
        self.metadataKeys = parsed.metadataKeys
        self.metadata = parsed.metadata
        self.tensors = parsed.tensors
        self.alignment = parsed.alignment
        self.dataOffset = parsed.dataOffset
        var index: [String: Int] = [:]
        for (i, t) in parsed.tensors.enumerated() { index[t.name] = i }
        self.tensorIndex = index
    }

    private var base: UnsafeRawPointer { mapping.base }

    /// The parsed metadata and tensor table go with the file: the pages they were read from are
    /// dropped too (a model holds the mapping for its weights; Gemma 3's header is 6 MB).
    deinit { releaseHeaderPages() }

    public func tensor(named name: String) -> GGUFTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// The bytes of a tensor, in place in the mapping. Throws for a tensor of a type this build
    /// does not know (its size cannot be computed).
    public func data(for tensor: GGUFTensorInfo) throws -> UnsafeRawBufferPointer {
        guard let size = tensor.byteCount else {
            throw GGUFError.unknownTensorType(path, offset: tensor.entryOffset, name: tensor.name, type: tensor.type)
        }
        // Bounds were checked at parse time for every tensor of a known type.
        return UnsafeRawBufferPointer(start: base + tensor.fileOffset, count: size)
    }

    /// The bytes of the tensor named `name`; throws when there is none.
    public func data(named name: String) throws -> UnsafeRawBufferPointer {
        guard let t = tensor(named: name) else { throw GGUFError.missingTensor(path, name: name) }
        return try data(for: t)
    }

    /// Drops the resident pages of `bytes` (a region of this file's mapping that will not be read
    /// again, e.g. weights copied into another layout) from the process's memory: the whole pages
    /// inside it are advised away (MADV_DONTNEED). The mapping is private and read-only, so a later
    /// read would fault them back in from the file, unchanged. Does nothing for a file held in
    /// memory (not mapped) or a region outside the mapping.
    public func discardPages(of bytes: UnsafeRawBufferPointer) {
        guard case .mapped(let p, let size) = mapping.storage, let start = bytes.baseAddress else { return }
        let mapStart = UInt(bitPattern: p), mapEnd = mapStart + UInt(size)
        let lo = UInt(bitPattern: start), hi = lo + UInt(bytes.count)
        guard lo >= mapStart, hi <= mapEnd else { return }
        let page = UInt(max(sysconf(Int32(_SC_PAGESIZE)), 4096))
        let first = (lo + page - 1) / page * page, last = hi / page * page
        guard first < last, let region = UnsafeMutableRawPointer(bitPattern: first) else { return }
        _ = madvise(region, Int(last - first), MADV_DONTNEED)
    }

    /// Raw bytes of the file in `range` (e.g. the header region, for fingerprints), or nil when
    /// the range is not inside the file.
    public func rawBytes(_ range: Range<Int>) -> UnsafeRawBufferPointer? {
        guard range.lowerBound >= 0, range.upperBound <= fileSize else { return nil }
        return UnsafeRawBufferPointer(start: base + range.lowerBound, count: range.count)
    }

    /// Advises the kernel how the tensor data will be read (e.g. `MADV_WILLNEED` at load).
    public func adviseWillNeed() {
        if case .mapped(let p, let size) = storage {
            _ = madvise(p, size, MADV_WILLNEED)
        }
    }

    /// Lets the kernel drop the resident pages of the header, metadata and tensor table (the
    /// vocabulary alone is megabytes) once whatever needed them has been built; done anyway when
    /// the file is released. The mapping stays valid: a later read (of a metadata array, say)
    /// faults the pages back in from the file.
    public func releaseHeaderPages() {
        guard case .mapped(let p, _) = storage else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let length = dataOffset / page * page  // never past the first tensor's page
        if length > 0 { _ = madvise(p, length, MADV_DONTNEED) }
    }

    // MARK: Typed metadata access

    public func string(_ key: String) -> String? { metadata[key]?.stringValue }
    public func int(_ key: String) -> Int? { metadata[key]?.intValue }
    public func double(_ key: String) -> Double? { metadata[key]?.doubleValue }
    public func float(_ key: String) -> Float? { metadata[key]?.doubleValue.map(Float.init) }
    public func bool(_ key: String) -> Bool? { metadata[key]?.boolValue }

    /// The elements of an array, all decoded: prefer the typed accessors below for large arrays.
    public func array(_ key: String) -> [GGUFValue]? { metadata[key]?.arrayValue }
    /// The number of elements of an array, without decoding them.
    public func arrayCount(_ key: String) -> Int? { arrayElements(key)?.count }
    /// An array of strings, decoded straight from the file; nil when `key` is not one.
    public func stringArray(_ key: String) -> [String]? { arrayElements(key)?.stringValues() }
    /// An array of integers; nil when `key` is not one or a value does not fit in `Int`.
    public func intArray(_ key: String) -> [Int]? { arrayElements(key)?.intValues() }
    /// An array of numbers as `Float`s (float32 read straight from the file); nil when `key` is
    /// not an array of numbers.
    public func floatArray(_ key: String) -> [Float]? { arrayElements(key)?.floatValues() }

    private func arrayElements(_ key: String) -> GGUFArray? {
        if case .array(_, let values)? = metadata[key] { return values }
        return nil
    }
}

/// The memory holding a GGUF file: a read-only mapping, or a copy for files parsed from bytes.
/// Unmapped (or freed) when the last reference goes.
public final class GGUFMapping: @unchecked Sendable {
    // @unchecked: immutable after init; the memory is only read.
    enum Storage {
        case mapped(UnsafeMutableRawPointer, Int)
        case owned(UnsafeMutableRawBufferPointer)
    }

    let storage: Storage
    /// The file's bytes (for a copy, without the padding of an empty file's one-byte buffer).
    let bytes: UnsafeRawBufferPointer

    init(storage: Storage, count: Int) {
        self.storage = storage
        switch storage {
        case .mapped(let p, _): bytes = UnsafeRawBufferPointer(start: p, count: count)
        case .owned(let buffer): bytes = UnsafeRawBufferPointer(start: buffer.baseAddress, count: count)
        }
    }

    /// The start of the file's bytes.
    var base: UnsafeRawPointer { bytes.baseAddress! }

    deinit {
        switch storage {
        case .mapped(let p, let size): munmap(p, size)
        case .owned(let buffer): buffer.deallocate()
        }
    }
}
