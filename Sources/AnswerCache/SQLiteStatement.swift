import CSQLite

/// A prepared statement: bind by 1-based index, `step()` until it returns false, `reset()` to
/// run it again. Text and blobs are bound with `SQLITE_TRANSIENT` (SQLite copies them).
public final class SQLiteStatement {
    let handle: OpaquePointer
    // Strong reference: the connection must outlive its statements.
    private let database: SQLiteDatabase

    init(database: SQLiteDatabase, handle: OpaquePointer) {
        self.database = database
        self.handle = handle
    }

    deinit {
        sqlite3_finalize(handle)
    }

    private func check(_ rc: Int32, _ operation: String) throws(AnswerCacheError) {
        if rc != SQLITE_OK { throw database.error(operation, rc) }
    }

    public func bind(_ index: Int32, _ value: Int64) throws(AnswerCacheError) {
        try check(sqlite3_bind_int64(handle, index, value), "bind")
    }

    public func bind(_ index: Int32, _ value: Int) throws(AnswerCacheError) {
        try bind(index, Int64(value))
    }

    public func bind(_ index: Int32, _ value: String) throws(AnswerCacheError) {
        try check(sqlite3_bind_text(handle, index, value, -1, csqlite_transient()), "bind")
    }

    public func bind(_ index: Int32, blob: [UInt8]) throws(AnswerCacheError) {
        let rc = blob.withUnsafeBytes { raw in
            // A zero-length blob still needs a non-null pointer to bind as a blob, not NULL.
            sqlite3_bind_blob(handle, index, raw.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(raw.count), csqlite_transient())
        }
        try check(rc, "bind")
    }

    public func bindNull(_ index: Int32) throws(AnswerCacheError) {
        try check(sqlite3_bind_null(handle, index), "bind")
    }

    /// Advances to the next row: true when a row is ready, false when the statement is done.
    @discardableResult
    public func step() throws(AnswerCacheError) -> Bool {
        let rc = sqlite3_step(handle)
        switch rc {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw database.error("step", rc)
        }
    }

    /// Resets for another run and clears the bindings.
    public func reset() {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    public func isNull(_ column: Int32) -> Bool { sqlite3_column_type(handle, column) == SQLITE_NULL }

    public func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }

    public func text(_ column: Int32) -> String {
        guard let pointer = sqlite3_column_text(handle, column) else { return "" }
        let count = Int(sqlite3_column_bytes(handle, column))
        return String(decoding: UnsafeBufferPointer(start: pointer, count: count), as: UTF8.self)
    }

    public func blob(_ column: Int32) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(handle, column))
        guard count > 0, let pointer = sqlite3_column_blob(handle, column) else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }
}
