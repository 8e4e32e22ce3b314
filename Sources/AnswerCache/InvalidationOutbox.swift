import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import OutpostCore
import Synchronization

/// The durable outbox of local invalidations for PeerSync, kept in the answer cache's own SQLite
/// file (tables `outbox` and `peer_state`, schema version 2) on a connection of its own, so the
/// cache's writer is never held up by it. Every write is committed with `synchronous=FULL`.
public final class InvalidationOutbox: InvalidationLog {
    /// Schema step 1 → 2 (run by `AnswerStore`'s migrations when the cache opens).
    static let migration = """
        CREATE TABLE outbox(
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            kind INTEGER NOT NULL,
            value TEXT NOT NULL,
            hlc INTEGER NOT NULL
        );
        CREATE TABLE peer_state(
            name TEXT PRIMARY KEY,
            value TEXT NOT NULL
        ) WITHOUT ROWID;
        """

    /// Most records kept; beyond it the oldest are replaced by one `all` record (still sound:
    /// peers drop more than needed, never less).
    public let capacity: Int
    private let db: Mutex<Connection>

    private final class Connection {
        let db: SQLiteDatabase
        let insert: SQLiteStatement
        let select: SQLiteStatement
        let delete: SQLiteStatement
        let getState: SQLiteStatement
        let putState: SQLiteStatement
        init(path: String) throws(AnswerCacheError) {
            db = try SQLiteDatabase(path: path, flags: [.readWrite, .noMutex])
            db.setBusyTimeout(milliseconds: 5000)
            try db.execute("PRAGMA synchronous=FULL")
            insert = try db.prepare(InvalidationOutbox.insertSQL, persistent: true)
            select = try db.prepare("SELECT seq, kind, value, hlc FROM outbox ORDER BY seq LIMIT ?1", persistent: true)
            delete = try db.prepare("DELETE FROM outbox WHERE seq <= ?1", persistent: true)
            getState = try db.prepare("SELECT value FROM peer_state WHERE name = ?1", persistent: true)
            putState = try db.prepare("""
                INSERT INTO peer_state(name, value) VALUES (?1, ?2)
                ON CONFLICT(name) DO UPDATE SET value = excluded.value
                """, persistent: true)
        }
    }

    /// Opens the outbox in `cache`'s file (the cache has already migrated it).
    public init(cache: AnswerCache, capacity: Int = 100_000) throws(AnswerCacheError) {
        guard capacity > 1 else { throw .invalidConfiguration("outbox capacity must be at least 2") }
        self.capacity = capacity
        db = Mutex(try Connection(path: cache.configuration.path))
    }

    public func append(_ tombstone: Tombstone) throws {
        try tombstone.scope.validate()
        try db.withLock { (c: inout Connection) throws(AnswerCacheError) in
            try c.db.transaction { () throws(AnswerCacheError) in
                try Self.record(tombstone, capacity: capacity, in: c.db, insert: c.insert)
            }
        }
    }

    /// Adds `t` inside the caller's transaction on `db` (the cache's writer uses it to commit a
    /// tombstone and its outbox record together). At capacity, everything pending collapses into
    /// one `all` record at the newest clock reading first.
    static func record(_ t: Tombstone, capacity: Int, in db: SQLiteDatabase, insert: SQLiteStatement) throws(AnswerCacheError) {
        let count = try db.scalarInt("SELECT count(*) FROM outbox") ?? 0
        if count >= Int64(capacity) {
            let newest = try db.scalarInt("SELECT max(hlc) FROM outbox") ?? 0
            try db.execute("DELETE FROM outbox")
            try Self.insert(insert, Tombstone(scope: .all, hlc: HLCTimestamp(rawValue: UInt64(bitPattern: newest))))
        }
        try Self.insert(insert, t)
    }

    /// The statement `record` needs, prepared on another connection to the same file.
    static let insertSQL = "INSERT INTO outbox(kind, value, hlc) VALUES (?1, ?2, ?3)"

    private static func insert(_ statement: SQLiteStatement, _ t: Tombstone) throws(AnswerCacheError) {
        defer { statement.reset() }
        try statement.bind(1, t.scope.storageKind)
        try statement.bind(2, t.scope.storageValue)
        try statement.bind(3, Int64(bitPattern: t.hlc.rawValue))
        try statement.step()
    }

    public func pending(limit: Int) throws -> [PendingInvalidation] {
        try db.withLock { (c: inout Connection) throws(AnswerCacheError) -> [PendingInvalidation] in
            let s = c.select
            defer { s.reset() }
            try s.bind(1, max(0, limit))
            var out: [PendingInvalidation] = []
            while try s.step() {
                let scope = try InvalidationScope(storageKind: s.int64(1), value: s.text(2))
                out.append(PendingInvalidation(
                    sequence: s.int64(0),
                    tombstone: Tombstone(scope: scope, hlc: HLCTimestamp(rawValue: UInt64(bitPattern: s.int64(3))))))
            }
            return out
        }
    }

    public func markPublished(through sequence: Int64) throws {
        try db.withLock { (c: inout Connection) throws(AnswerCacheError) in
            defer { c.delete.reset() }
            try c.delete.bind(1, sequence)
            try c.delete.step()
        }
    }

    public func hadSession() throws -> Bool {
        try db.withLock { (c: inout Connection) throws(AnswerCacheError) -> Bool in try Self.state(c, "had_session") == "1" }
    }

    public func recordSession() throws {
        try setState("had_session", "1")
    }

    public func epoch() throws -> String {
        try db.withLock { (c: inout Connection) throws(AnswerCacheError) -> String in
            if let e = try Self.state(c, "epoch") { return e }
            let e = UUID().uuidString.lowercased()
            try Self.setState(c, "epoch", e)
            return e
        }
    }

    public func peerPosition(origin: String) throws -> PeerPosition? {
        try db.withLock { (c: inout Connection) throws(AnswerCacheError) -> PeerPosition? in
            guard let v = try Self.state(c, "peer:" + origin) else { return nil }
            let parts = v.split(separator: " ")
            guard parts.count == 2, let seq = Int64(parts[1]) else { throw .corruptValue("peer position \(v)") }
            return PeerPosition(epoch: String(parts[0]), sequence: seq)
        }
    }

    public func recordPeerPosition(_ position: PeerPosition, origin: String) throws {
        guard !position.epoch.contains(" ") else { throw AnswerCacheError.invalidConfiguration("an epoch has no spaces") }
        try setState("peer:" + origin, "\(position.epoch) \(position.sequence)")
    }

    private func setState(_ name: String, _ value: String) throws(AnswerCacheError) {
        try db.withLock { (c: inout Connection) throws(AnswerCacheError) in try Self.setState(c, name, value) }
    }

    private static func state(_ c: Connection, _ name: String) throws(AnswerCacheError) -> String? {
        let s = c.getState
        defer { s.reset() }
        try s.bind(1, name)
        return try s.step() ? s.text(0) : nil
    }

    private static func setState(_ c: Connection, _ name: String, _ value: String) throws(AnswerCacheError) {
        let s = c.putState
        defer { s.reset() }
        try s.bind(1, name)
        try s.bind(2, value)
        try s.step()
    }
}

/// PeerSync applies peers' tombstones and its own conservative drops through the cache's
/// durable invalidation path.
extension AnswerCache: InvalidationTarget {}
