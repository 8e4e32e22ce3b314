/// A bounds-checked little-endian cursor over the bytes of a GGUF file. Every read checks the
/// remaining length first and throws `GGUFError.truncated` naming the offset and what was read.
struct ByteReader {
    let base: UnsafeRawPointer?
    let count: Int
    let path: String
    private(set) var offset: Int = 0

    init(_ bytes: UnsafeRawBufferPointer, path: String) {
        self.base = bytes.baseAddress
        self.count = bytes.count
        self.path = path
    }

    var remaining: Int { count - offset }

    private func require(_ n: Int, _ what: @autoclosure () -> String) throws {
        if n > remaining {
            throw GGUFError.truncated(path, offset: offset, needed: n, reading: what(), fileSize: count)
        }
    }

    mutating func read<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String) throws -> T {
        let size = MemoryLayout<T>.size
        try require(size, what())
        let v = base!.loadUnaligned(fromByteOffset: offset, as: T.self)
        offset += size
        return T(littleEndian: v)
    }

    mutating func readFloat(_ what: @autoclosure () -> String) throws -> Float {
        Float(bitPattern: try read(UInt32.self, what()))
    }

    mutating func readDouble(_ what: @autoclosure () -> String) throws -> Double {
        Double(bitPattern: try read(UInt64.self, what()))
    }

    /// Reads a GGUF string: a u64 byte length, then that many bytes of UTF-8 (invalid sequences
    /// are repaired with U+FFFD rather than rejected, as llama.cpp keeps them as bytes).
    mutating func readString(_ what: @autoclosure () -> String) throws -> String {
        String(decoding: try readStringBytes(what()), as: UTF8.self)
    }

    /// Reads a GGUF string's length and steps over its bytes, with the checks of `readString`.
    mutating func readStringBytes(_ what: @autoclosure () -> String) throws -> UnsafeRawBufferPointer {
        let lengthOffset = offset
        let length = try read(UInt64.self, what())
        guard length <= UInt64(remaining) else {
            throw GGUFError.countTooLarge(path, offset: lengthOffset, what: "\(what()) length", count: length, limit: remaining)
        }
        let n = Int(length)
        let bytes = UnsafeRawBufferPointer(start: base! + offset, count: n)
        offset += n
        return bytes
    }

    /// Steps over `n` bytes.
    mutating func skip(_ n: Int, _ what: @autoclosure () -> String) throws {
        try require(n, what())
        offset += n
    }

    /// Reads a u64 count of items that each take at least `minimumSize` bytes, and refuses it when
    /// that many items cannot fit in what is left of the file.
    mutating func readCount(_ what: @autoclosure () -> String, minimumSize: Int) throws -> Int {
        let countOffset = offset
        let n = try read(UInt64.self, what())
        if n > UInt64(remaining / max(minimumSize, 1)) {
            throw GGUFError.countTooLarge(path, offset: countOffset, what: what(), count: n, limit: remaining)
        }
        return Int(n)
    }
}
