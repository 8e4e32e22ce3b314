/// Everything that can go wrong in the answer cache, with the context needed to act on it.
public struct AnswerCacheError: Error, Sendable, CustomStringConvertible {
    private enum Code: Sendable, Hashable {
        case sqlite
        case foreignDatabase
        case newerSchema
        case corruptDatabase
        case compression
        case decompression
        case oversized
        case corruptValue
        case closed
        case invalidConfiguration
        case clock
    }

    private let code: Code
    /// SQLite primary and extended result codes, when SQLite reported the error.
    public let sqliteCode: Int32?
    public let sqliteExtendedCode: Int32?
    /// The database file concerned, when there is one.
    public let path: String?
    public let message: String

    private init(_ code: Code, message: String, path: String? = nil, sqliteCode: Int32? = nil, sqliteExtendedCode: Int32? = nil) {
        self.code = code
        self.message = message
        self.path = path
        self.sqliteCode = sqliteCode
        self.sqliteExtendedCode = sqliteExtendedCode
    }

    static func sqlite(_ operation: String, code: Int32, extendedCode: Int32, sqliteMessage: String, path: String?) -> AnswerCacheError {
        AnswerCacheError(.sqlite, message: "SQLite \(operation) failed: \(sqliteMessage) (code \(code), extended \(extendedCode))",
                         path: path, sqliteCode: code, sqliteExtendedCode: extendedCode)
    }

    static func foreignDatabase(path: String, applicationID: Int32) -> AnswerCacheError {
        AnswerCacheError(.foreignDatabase, message:
            "\(path) is an SQLite file of another application (application_id \(applicationID)); "
            + "it was left untouched: point the cache at another file", path: path)
    }

    static func newerSchema(path: String, version: Int32, supported: Int32) -> AnswerCacheError {
        AnswerCacheError(.newerSchema, message:
            "\(path) has cache schema version \(version) but this build knows up to \(supported); "
            + "it was left untouched: upgrade outpost or use another file", path: path)
    }

    static func corruptDatabase(path: String, detail: String, sqliteCode: Int32? = nil) -> AnswerCacheError {
        AnswerCacheError(.corruptDatabase, message:
            "\(path) is not a usable cache database (\(detail)); it was left untouched: move it away to start afresh",
            path: path, sqliteCode: sqliteCode)
    }

    static func compression(_ detail: String) -> AnswerCacheError {
        AnswerCacheError(.compression, message: "zstd compression failed: \(detail)")
    }

    static func decompression(_ detail: String) -> AnswerCacheError {
        AnswerCacheError(.decompression, message: "zstd decompression refused or failed: \(detail)")
    }

    static func oversized(_ what: String, size: Int, limit: Int) -> AnswerCacheError {
        AnswerCacheError(.oversized, message: "\(what) is \(size) bytes, over the limit of \(limit) bytes")
    }

    static func corruptValue(_ detail: String) -> AnswerCacheError {
        AnswerCacheError(.corruptValue, message: "stored answer is corrupt: \(detail)")
    }

    static func closed() -> AnswerCacheError {
        AnswerCacheError(.closed, message: "the answer cache is closed")
    }

    static func invalidConfiguration(_ detail: String) -> AnswerCacheError {
        AnswerCacheError(.invalidConfiguration, message: "invalid cache configuration: \(detail)")
    }

    static func clock(_ error: some Error) -> AnswerCacheError {
        AnswerCacheError(.clock, message: "invalidation refused: \(error)")
    }

    public var isClock: Bool { code == .clock }
    public var isSQLite: Bool { code == .sqlite }
    public var isForeignDatabase: Bool { code == .foreignDatabase }
    public var isNewerSchema: Bool { code == .newerSchema }
    public var isCorruptDatabase: Bool { code == .corruptDatabase }
    public var isCompression: Bool { code == .compression }
    public var isDecompression: Bool { code == .decompression }
    public var isOversized: Bool { code == .oversized }
    public var isCorruptValue: Bool { code == .corruptValue }
    public var isClosed: Bool { code == .closed }
    public var isInvalidConfiguration: Bool { code == .invalidConfiguration }

    public var description: String { message }
}
