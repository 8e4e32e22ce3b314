import CSQLite

/// A thin wrapper over one `sqlite3` connection: every return code becomes a thrown
/// `AnswerCacheError` carrying the primary and extended codes and SQLite's message.
///
/// Not thread-safe: one owner at a time (the cache keeps each connection behind its own lock).
public final class SQLiteDatabase {
    public struct OpenFlags: OptionSet, Sendable {
        public let rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }
        public static let readOnly = OpenFlags(rawValue: SQLITE_OPEN_READONLY)
        public static let readWrite = OpenFlags(rawValue: SQLITE_OPEN_READWRITE)
        public static let create = OpenFlags(rawValue: SQLITE_OPEN_CREATE)
        /// The connection is used by one thread at a time; SQLite's own mutex is not needed.
        public static let noMutex = OpenFlags(rawValue: SQLITE_OPEN_NOMUTEX)
    }

    let handle: OpaquePointer
    public let path: String

    public init(path: String, flags: OpenFlags = [.readWrite, .create, .noMutex]) throws(AnswerCacheError) {
        var db: OpaquePointer?
        let rc = sqlite3_open_v2(path, &db, flags.rawValue | SQLITE_OPEN_EXRESCODE, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
            let extended = db.map { sqlite3_extended_errcode($0) } ?? rc
            if let db { sqlite3_close_v2(db) }
            throw .sqlite("open", code: rc & 0xFF, extendedCode: extended, sqliteMessage: message, path: path)
        }
        handle = db
        self.path = path
        sqlite3_extended_result_codes(db, 1)
    }

    deinit {
        sqlite3_close_v2(handle)
    }

    func error(_ operation: String, _ rc: Int32) -> AnswerCacheError {
        .sqlite(operation, code: rc & 0xFF, extendedCode: sqlite3_extended_errcode(handle),
                sqliteMessage: String(cString: sqlite3_errmsg(handle)), path: path)
    }

    /// Runs one or more statements that return no rows needed by the caller.
    public func execute(_ sql: String) throws(AnswerCacheError) {
        var errorMessage: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &errorMessage)
        if rc != SQLITE_OK {
            let message = errorMessage.map { String(cString: $0) } ?? String(cString: sqlite3_errstr(rc))
            sqlite3_free(errorMessage)
            throw .sqlite("exec", code: rc & 0xFF, extendedCode: sqlite3_extended_errcode(handle),
                          sqliteMessage: message, path: path)
        }
    }

    public func prepare(_ sql: String, persistent: Bool = false) throws(AnswerCacheError) -> SQLiteStatement {
        var statement: OpaquePointer?
        let flags: UInt32 = persistent ? UInt32(SQLITE_PREPARE_PERSISTENT) : 0
        let rc = sqlite3_prepare_v3(handle, sql, -1, flags, &statement, nil)
        guard rc == SQLITE_OK, let statement else { throw error("prepare", rc) }
        return SQLiteStatement(database: self, handle: statement)
    }

    /// The first column of the first row of `sql`, as an integer (for pragmas and counts).
    public func scalarInt(_ sql: String) throws(AnswerCacheError) -> Int64? {
        let statement = try prepare(sql)
        guard try statement.step() else { return nil }
        return statement.isNull(0) ? nil : statement.int64(0)
    }

    /// The first column of the first row of `sql`, as text.
    public func scalarText(_ sql: String) throws(AnswerCacheError) -> String? {
        let statement = try prepare(sql)
        guard try statement.step() else { return nil }
        return statement.isNull(0) ? nil : statement.text(0)
    }

    /// Runs `body` inside `BEGIN IMMEDIATE … COMMIT`, rolling back if it throws.
    public func transaction<T>(_ body: () throws(AnswerCacheError) -> T) throws(AnswerCacheError) -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let value = try body()
            try execute("COMMIT")
            return value
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    public var changes: Int { Int(sqlite3_changes(handle)) }

    /// Milliseconds SQLite waits on a lock held by another connection before `SQLITE_BUSY`.
    public func setBusyTimeout(milliseconds: Int32) {
        sqlite3_busy_timeout(handle, milliseconds)
    }
}

extension SQLiteDatabase {
    /// `PRAGMA integrity_check`: `["ok"]` when the file is sound, else SQLite's findings.
    public func integrityCheck(maxErrors: Int = 100) throws(AnswerCacheError) -> [String] {
        let statement = try prepare("PRAGMA integrity_check(\(maxErrors))")
        var rows: [String] = []
        while try statement.step() { rows.append(statement.text(0)) }
        return rows
    }
}
