/// Why a GGUF file could not be read or used. Every error names the file and, where it applies,
/// the byte offset at which the problem was found.
public struct GGUFError: Error, CustomStringConvertible, Sendable {
    private enum Code: Sendable {
        case cannotOpen
        case notRegularFile
        case mapFailed
        case tooShort
        case badMagic
        case unsupportedVersion
        case truncated
        case countTooLarge
        case invalidValueType
        case invalidBool
        case nestingTooDeep
        case duplicateKey
        case invalidAlignment
        case invalidTensor
        case duplicateTensor
        case tensorOutOfBounds
        case unknownTensorType
        case missingTensor
    }

    private let code: Code
    /// The file the error is about (empty when parsing from memory without a name).
    public let path: String
    /// Byte offset in the file where the problem was found, when there is one.
    public let offset: Int?
    /// What was wrong, in words.
    public let detail: String
    /// The errno of a failing system call, when there is one.
    public let errno: Int32?

    private init(_ code: Code, path: String, offset: Int?, detail: String, errno: Int32? = nil) {
        self.code = code
        self.path = path
        self.offset = offset
        self.detail = detail
        self.errno = errno
    }

    public var description: String {
        var s = path.isEmpty ? "GGUF" : path
        if let offset { s += ": at offset \(offset)" }
        s += ": \(detail)"
        return s
    }

    /// True when the file is not a GGUF file or is damaged (as opposed to an I/O problem).
    public var isMalformed: Bool {
        switch code {
        case .cannotOpen, .notRegularFile, .mapFailed, .missingTensor, .unknownTensorType: false
        default: true
        }
    }

    /// True when the error is about a tensor type this build does not know.
    public var isUnknownTensorType: Bool { code == .unknownTensorType }

    static func cannotOpen(_ path: String, errno: Int32, reason: String) -> GGUFError {
        GGUFError(.cannotOpen, path: path, offset: nil, detail: "cannot open: \(reason)", errno: errno)
    }
    static func notRegularFile(_ path: String) -> GGUFError {
        GGUFError(.notRegularFile, path: path, offset: nil, detail: "not a regular file")
    }
    static func mapFailed(_ path: String, errno: Int32, reason: String) -> GGUFError {
        GGUFError(.mapFailed, path: path, offset: nil, detail: "cannot map the file: \(reason)", errno: errno)
    }
    static func tooShort(_ path: String, size: Int) -> GGUFError {
        GGUFError(.tooShort, path: path, offset: 0, detail: "file is \(size) bytes, too short for a GGUF header (24 bytes)")
    }
    static func badMagic(_ path: String, found: UInt32) -> GGUFError {
        let hex = String(found, radix: 16)
        return GGUFError(.badMagic, path: path, offset: 0, detail: "not a GGUF file (magic 0x\(hex), expected \"GGUF\")")
    }
    static func unsupportedVersion(_ path: String, version: UInt32) -> GGUFError {
        GGUFError(.unsupportedVersion, path: path, offset: 4, detail: "unsupported GGUF version \(version) (this build reads versions 2 and 3)")
    }
    static func truncated(_ path: String, offset: Int, needed: Int, reading what: String, fileSize: Int) -> GGUFError {
        GGUFError(.truncated, path: path, offset: offset,
                  detail: "truncated: \(what) needs \(needed) bytes but the file ends at \(fileSize)")
    }
    static func countTooLarge(_ path: String, offset: Int, what: String, count: UInt64, limit: Int) -> GGUFError {
        GGUFError(.countTooLarge, path: path, offset: offset,
                  detail: "\(what) \(count) cannot fit in the \(limit) bytes left in the file")
    }
    static func invalidValueType(_ path: String, offset: Int, raw: UInt32, key: String) -> GGUFError {
        GGUFError(.invalidValueType, path: path, offset: offset, detail: "invalid metadata value type \(raw) for key \"\(key)\"")
    }
    static func invalidBool(_ path: String, offset: Int, key: String, byte: UInt8) -> GGUFError {
        GGUFError(.invalidBool, path: path, offset: offset, detail: "bool value \(byte) for key \"\(key)\" (must be 0 or 1)")
    }
    static func nestingTooDeep(_ path: String, offset: Int, key: String) -> GGUFError {
        GGUFError(.nestingTooDeep, path: path, offset: offset, detail: "arrays nested too deeply in key \"\(key)\"")
    }
    static func duplicateKey(_ path: String, offset: Int, key: String) -> GGUFError {
        GGUFError(.duplicateKey, path: path, offset: offset, detail: "duplicate metadata key \"\(key)\"")
    }
    static func invalidAlignment(_ path: String, offset: Int, detail: String) -> GGUFError {
        GGUFError(.invalidAlignment, path: path, offset: offset, detail: "invalid general.alignment: \(detail)")
    }
    static func invalidTensor(_ path: String, offset: Int, name: String, detail: String) -> GGUFError {
        GGUFError(.invalidTensor, path: path, offset: offset, detail: "tensor \"\(name)\": \(detail)")
    }
    static func duplicateTensor(_ path: String, offset: Int, name: String) -> GGUFError {
        GGUFError(.duplicateTensor, path: path, offset: offset, detail: "duplicate tensor name \"\(name)\"")
    }
    static func tensorOutOfBounds(_ path: String, offset: Int, name: String, end: Int, fileSize: Int) -> GGUFError {
        GGUFError(.tensorOutOfBounds, path: path, offset: offset,
                  detail: "tensor \"\(name)\" data ends at \(end), past the end of the file (\(fileSize) bytes)")
    }
    static func unknownTensorType(_ path: String, offset: Int, name: String, type: GGMLType) -> GGUFError {
        GGUFError(.unknownTensorType, path: path, offset: offset,
                  detail: "tensor \"\(name)\" has ggml type \(type.rawValue), which this build does not support")
    }
    static func missingTensor(_ path: String, name: String) -> GGUFError {
        GGUFError(.missingTensor, path: path, offset: nil, detail: "no tensor named \"\(name)\"")
    }
}
