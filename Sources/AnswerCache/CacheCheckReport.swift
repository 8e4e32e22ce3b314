import OutpostCore

/// What `AnswerCache.check(path:)` found in a cache file.
public struct CacheCheckReport: Sendable, Codable, Equatable {
    public var path: String
    /// `integrity_check` said "ok".
    public var ok: Bool
    public var integrity: [String]
    public var schemaVersion: Int
    public var entries: Int
    public var tombstones: Int
    /// Bytes of pages in use.
    public var bytes: Int
    public var fileBytes: Int

    enum CodingKeys: String, CodingKey {
        case path, ok, integrity, entries, tombstones, bytes
        case schemaVersion = "schema_version"
        case fileBytes = "file_bytes"
    }
}

extension AnswerCache {
    /// Checks a cache file without changing it: recognises it (a foreign, newer or corrupt file is
    /// an error), runs `integrity_check` and counts entries and tombstones.
    public static func check(path: String) throws(AnswerCacheError) -> CacheCheckReport {
        let db = try SQLiteDatabase(path: path, flags: [.readWrite, .noMutex])
        db.setBusyTimeout(milliseconds: 5000)
        let applicationID: Int64
        let version: Int64
        do {
            applicationID = try db.scalarInt("PRAGMA application_id") ?? 0
            version = try db.scalarInt("PRAGMA user_version") ?? 0
        } catch {
            throw .corruptDatabase(path: path, detail: error.message, sqliteCode: error.sqliteCode)
        }
        guard applicationID == AnswerStore.applicationID else {
            throw .foreignDatabase(path: path, applicationID: Int32(truncatingIfNeeded: applicationID))
        }
        guard version <= AnswerStore.schemaVersion else {
            throw .newerSchema(path: path, version: Int32(truncatingIfNeeded: version), supported: Int32(AnswerStore.schemaVersion))
        }
        let integrity = try db.integrityCheck()
        let pages = try db.scalarInt("PRAGMA page_count") ?? 0
        let free = try db.scalarInt("PRAGMA freelist_count") ?? 0
        let pageSize = try db.scalarInt("PRAGMA page_size") ?? 4096
        return CacheCheckReport(
            path: path, ok: integrity == ["ok"], integrity: integrity, schemaVersion: Int(version),
            entries: Int(try db.scalarInt("SELECT count(*) FROM entries") ?? 0),
            tombstones: Int(try db.scalarInt("SELECT count(*) FROM tombstones") ?? 0),
            bytes: Int((pages - free) * pageSize), fileBytes: Int(pages * pageSize))
    }
}
