import CSQLite
import Dispatch
import OutpostCore
import Synchronization

/// The SQLite tier: one file in WAL mode with `synchronous=NORMAL`, a versioned schema, prepared
/// statements, answers zstd-compressed above a size threshold, a disk budget enforced as
/// `EvictionPolicy` says (least recently accessed first), and tombstones that upserts respect.
///
/// Two connections: the writer (flushes, invalidations, maintenance) and a reader (lookups), each
/// behind its own lock, so lookups never wait for a flush to commit.
final class AnswerStore: Sendable {
    struct Options: Sendable {
        var path: String
        /// The disk budget the store opens with (`EvictionPolicy.diskBudgetBytes`).
        var diskBudgetBytes: Int
        var compressionThreshold: Int
        var compressionLevel: Int32
        var maxAnswerBytes: Int
    }

    struct WriteReport: Sendable {
        var written = 0
        var refused = 0
        var evicted = 0
    }

    /// "OUTP": marks the file as Outpost's answer cache in the SQLite header.
    static let applicationID: Int64 = 0x4F55_5450
    static let schemaVersion: Int64 = 2

    let options: Options
    /// The policy in force, of which the store uses the disk half: `options.diskBudgetBytes`
    /// until changed (`apply`).
    private let eviction: Mutex<EvictionPolicy>
    /// Used by the flusher thread only (one flush at a time), to encode before taking the write lock.
    private let compressor: Mutex<Zstd.Compressor>
    private let writer: Mutex<Writer>
    private let reader: Mutex<Reader>

    init(options: Options) throws(AnswerCacheError) {
        self.options = options
        eviction = Mutex(EvictionPolicy(diskBudgetBytes: options.diskBudgetBytes))
        compressor = Mutex(try Zstd.Compressor(level: options.compressionLevel))
        let db = try Self.openValidated(path: options.path)
        writer = Mutex(try Writer(db: db))
        reader = Mutex(try Reader(db: try SQLiteDatabase(path: options.path, flags: [.readWrite, .noMutex])))
    }

    // MARK: Opening

    /// Opens the file, recognises it as ours (or empty), and migrates it. A foreign, newer or
    /// corrupt file is refused before anything is written to it.
    private static func openValidated(path: String) throws(AnswerCacheError) -> SQLiteDatabase {
        let db = try SQLiteDatabase(path: path)
        db.setBusyTimeout(milliseconds: 5000)
        let applicationID: Int64
        let version: Int64
        let objects: Int64
        do {
            applicationID = try db.scalarInt("PRAGMA application_id") ?? 0
            version = try db.scalarInt("PRAGMA user_version") ?? 0
            objects = try db.scalarInt("SELECT count(*) FROM sqlite_master") ?? 0
        } catch {
            throw .corruptDatabase(path: path, detail: error.message, sqliteCode: error.sqliteCode)
        }
        if applicationID != Self.applicationID {
            guard applicationID == 0, objects == 0, version == 0 else {
                throw .foreignDatabase(path: path, applicationID: Int32(truncatingIfNeeded: applicationID))
            }
        }
        guard version <= schemaVersion else {
            throw .newerSchema(path: path, version: Int32(truncatingIfNeeded: version), supported: Int32(schemaVersion))
        }
        guard try db.scalarText("PRAGMA journal_mode=WAL") == "wal" else {
            throw .corruptDatabase(path: path, detail: "cannot switch to WAL mode")
        }
        try db.execute("PRAGMA synchronous=NORMAL")
        try tune(db, cacheKiB: writerCacheKiB)
        if version < schemaVersion {
            try db.transaction { () throws(AnswerCacheError) in
                for step in Int(version)..<Int(schemaVersion) {
                    try db.execute(migrations[step])
                }
                try db.execute("PRAGMA application_id=\(Self.applicationID); PRAGMA user_version=\(schemaVersion)")
            }
        }
        return db
    }

    /// Page cache of the writer: room for the indexes and table pages a flush rewrites (smaller
    /// caps cost durable fill throughput). The reader reads the file through the mapping and
    /// needs little.
    static let writerCacheKiB = 65536
    static let readerCacheKiB = 2048

    /// Connection settings (not stored in the file): a bounded page cache, memory-mapped reads,
    /// and checkpoints every 32 MiB of WAL rather than every 4 MiB, so pages rewritten by
    /// consecutive flushes are copied into the database once.
    static func tune(_ db: SQLiteDatabase, cacheKiB: Int) throws(AnswerCacheError) {
        try db.execute("""
            PRAGMA cache_size=-\(cacheKiB);
            PRAGMA mmap_size=268435456;
            PRAGMA wal_autocheckpoint=8192;
            PRAGMA journal_size_limit=67108864;
            PRAGMA temp_store=MEMORY;
            """)
    }

    /// Keys are looked up through an index on their first eight bytes (`key_prefix`) and then
    /// compared in full: an 8-byte integer index is less than half the size of a 32-byte blob
    /// index, so a flush of random keys rewrites far fewer index pages.
    /// `migrations[n]` takes the schema from version n to n + 1.
    static let migrations: [String] = [
        """
        CREATE TABLE entries(
            id INTEGER PRIMARY KEY,
            key_prefix INTEGER NOT NULL,
            key BLOB NOT NULL,
            namespace TEXT NOT NULL,
            tags TEXT NOT NULL,
            hlc INTEGER NOT NULL,
            created_ms INTEGER NOT NULL,
            expires_ms INTEGER NOT NULL,
            stale_until_ms INTEGER NOT NULL,
            last_access_ms INTEGER NOT NULL,
            codec INTEGER NOT NULL,
            raw_size INTEGER NOT NULL,
            value BLOB NOT NULL
        );
        CREATE INDEX entries_key_prefix ON entries(key_prefix);
        CREATE INDEX entries_last_access ON entries(last_access_ms);
        CREATE INDEX entries_namespace ON entries(namespace);
        CREATE TABLE tombstones(
            kind INTEGER NOT NULL,
            value TEXT NOT NULL,
            hlc INTEGER NOT NULL,
            PRIMARY KEY(kind, value)
        ) WITHOUT ROWID;
        """,
        InvalidationOutbox.migration,
    ]

    /// The first eight bytes of a key as the integer the key index holds.
    static func prefix(_ key: CacheKey) -> Int64 { Int64(bitPattern: key.w0) }

    // MARK: Writer

    private final class Writer {
        let db: SQLiteDatabase
        let find: SQLiteStatement
        let insert: SQLiteStatement
        let update: SQLiteStatement
        let touch: SQLiteStatement
        let tombstone: SQLiteStatement
        let deleteKey: SQLiteStatement
        let deleteTag: SQLiteStatement
        let deleteNamespace: SQLiteStatement
        let deleteAll: SQLiteStatement
        /// `EvictionPolicy.diskEvictionSQL`.
        let evict: SQLiteStatement
        let outboxInsert: SQLiteStatement
        let pageSize: Int64

        init(db: SQLiteDatabase) throws(AnswerCacheError) {
            self.db = db
            // The guard shared by insert and update: no tombstone at least as new as the fill
            // (?4) covers its key (?11, hex), namespace (?2), tags (?3, stored form) or everything.
            let guardClause = """
                NOT EXISTS (SELECT 1 FROM tombstones WHERE kind = 0 AND value = ?11 AND hlc >= ?4)
                  AND NOT EXISTS (SELECT 1 FROM tombstones WHERE kind = 2 AND value = ?2 AND hlc >= ?4)
                  AND NOT EXISTS (SELECT 1 FROM tombstones WHERE kind = 3 AND value = '' AND hlc >= ?4)
                  AND (?3 = '' OR NOT EXISTS (SELECT 1 FROM tombstones WHERE kind = 1 AND hlc >= ?4
                                              AND instr(?3, char(31) || value || char(31)) > 0))
                """
            find = try db.prepare("SELECT id, hlc FROM entries WHERE key_prefix = ?1 AND key = ?2", persistent: true)
            insert = try db.prepare("""
                INSERT INTO entries(key_prefix, key, namespace, tags, hlc, created_ms, expires_ms, stale_until_ms,
                                    last_access_ms, codec, raw_size, value)
                SELECT ?12, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?5, ?8, ?9, ?10
                WHERE \(guardClause)
                """, persistent: true)
            update = try db.prepare("""
                UPDATE entries SET namespace = ?2, tags = ?3, hlc = ?4, created_ms = ?5, expires_ms = ?6,
                    stale_until_ms = ?7, last_access_ms = ?5, codec = ?8, raw_size = ?9, value = ?10
                WHERE id = ?12 AND hlc <= ?4 AND \(guardClause) AND ?1 IS NOT NULL
                """, persistent: true)
            touch = try db.prepare(
                "UPDATE entries SET last_access_ms = max(last_access_ms, ?2) WHERE key_prefix = ?3 AND key = ?1",
                                   persistent: true)
            tombstone = try db.prepare("""
                INSERT INTO tombstones(kind, value, hlc) VALUES (?1, ?2, ?3)
                ON CONFLICT(kind, value) DO UPDATE SET hlc = max(hlc, excluded.hlc)
                """, persistent: true)
            deleteKey = try db.prepare(
                "DELETE FROM entries WHERE key_prefix = ?3 AND key = ?1 AND hlc <= ?2", persistent: true)
            deleteTag = try db.prepare(
                "DELETE FROM entries WHERE instr(tags, char(31) || ?1 || char(31)) > 0 AND hlc <= ?2", persistent: true)
            deleteNamespace = try db.prepare("DELETE FROM entries WHERE namespace = ?1 AND hlc <= ?2", persistent: true)
            deleteAll = try db.prepare("DELETE FROM entries WHERE hlc <= ?2", persistent: true)
            evict = try db.prepare(EvictionPolicy.diskEvictionSQL, persistent: true)
            outboxInsert = try db.prepare(InvalidationOutbox.insertSQL, persistent: true)
            pageSize = try db.scalarInt("PRAGMA page_size") ?? 4096
        }

        func usedBytes() throws(AnswerCacheError) -> Int64 {
            let pages = try db.scalarInt("PRAGMA page_count") ?? 0
            let free = try db.scalarInt("PRAGMA freelist_count") ?? 0
            return (pages - free) * pageSize
        }
    }

    struct Row: Sendable {
        let fill: CachedEntry
        let codec: Int64
        let rawSize: Int
        let value: [UInt8]
    }

    /// The stored form of each fill: zstd when at least the threshold long and smaller for it,
    /// else raw. Answers over the limit are refused.
    fileprivate static func encode(
        _ fills: ArraySlice<CachedEntry>, compressor: Zstd.Compressor?, options: Options
    ) -> Encoded {
        var rows: [Row] = []
        rows.reserveCapacity(fills.count)
        var refused = 0
        for fill in fills {
            let raw = fill.answer.storageBytes
            guard raw.count <= options.maxAnswerBytes + Answer.storageHeaderBytes else {
                refused += 1
                continue
            }
            if raw.count >= options.compressionThreshold, let compressor,
               let compressed = try? compressor.compress(raw), compressed.count < raw.count {
                rows.append(Row(fill: fill, codec: 1, rawSize: raw.count, value: compressed))
            } else {
                rows.append(Row(fill: fill, codec: 0, rawSize: raw.count, value: raw))
            }
        }
        return Encoded(rows: rows, refused: refused)
    }

    /// Writes one batch in one transaction, then evicts if over the disk budget (`EvictionPolicy`).
    func write(_ batch: WriteBehindQueue.Batch) throws(AnswerCacheError) -> WriteReport {
        var report = WriteReport()
        let fills = batch.fills
        let options = self.options
        let chunk = Self.pipelineChunk
        let starts = Array(stride(from: 0, to: fills.count, by: chunk))
        func range(_ index: Int) -> Range<Int> { starts[index]..<min(starts[index] + chunk, fills.count) }
        // The first chunk is encoded before taking the write lock; while each chunk is written,
        // the next one is encoded on another thread, so compression overlaps with SQLite.
        var current: Encoded = starts.isEmpty ? Encoded(rows: [], refused: 0)
            : compressor.withLock { Self.encode(fills[range(0)], compressor: $0, options: options) }
        let policy = eviction.withLock { $0 }
        return try writer.withLock { (w: inout Writer) throws(AnswerCacheError) -> WriteReport in
            try w.db.transaction { () throws(AnswerCacheError) in
                for index in starts.indices {
                    let next = index + 1 < starts.count ? PendingEncode(fills[range(index + 1)], options: options) : nil
                    report.refused += current.refused
                    for row in current.rows {
                        if try Self.write(row, with: w) { report.written += 1 } else { report.refused += 1 }
                    }
                    if let next { current = next.wait() }
                }
                for touch in batch.touches {
                    defer { w.touch.reset() }
                    try w.touch.bind(1, blob: touch.key.bytes)
                    try w.touch.bind(3, Self.prefix(touch.key))
                    try w.touch.bind(2, Int64(clamping: touch.millis))
                    try w.touch.step()
                }
            }
            report.evicted = try evictIfOverBudget(&w, policy: policy)
            return report
        }
    }

    /// Fills per pipeline step of a flush.
    static let pipelineChunk = 512

    struct Encoded: Sendable {
        var rows: [Row]
        var refused: Int
    }

    /// One chunk being encoded on a global-queue thread.
    private final class PendingEncode: Sendable {
        private let done = DispatchSemaphore(value: 0)
        private let result = Mutex<Encoded?>(nil)

        init(_ fills: ArraySlice<CachedEntry>, options: Options) {
            DispatchQueue.global().async { [self] in
                let compressor = try? Zstd.Compressor(level: options.compressionLevel)
                let encoded = AnswerStore.encode(fills, compressor: compressor, options: options)
                result.withLock { $0 = encoded }
                done.signal()
            }
        }

        func wait() -> Encoded {
            done.wait()
            return result.withLock { $0 ?? Encoded(rows: [], refused: 0) }
        }
    }

    /// Inserts or replaces one row; false when refused (a newer row, or a covering tombstone).
    private static func write(_ row: Row, with w: Writer) throws(AnswerCacheError) -> Bool {
        let f = row.fill
        let keyBytes = f.key.bytes
        let prefix = Self.prefix(f.key)
        let hlc = Int64(bitPattern: f.hlc.rawValue)
        // Newer-wins: an existing row is replaced only by a fill at least as new.
        try w.find.bind(1, prefix)
        try w.find.bind(2, blob: keyBytes)
        let existing: (id: Int64, hlc: Int64)? = try w.find.step() ? (w.find.int64(0), w.find.int64(1)) : nil
        w.find.reset()
        if let existing, UInt64(bitPattern: existing.hlc) > f.hlc.rawValue { return false }
        let s = existing == nil ? w.insert : w.update
        defer { s.reset() }
        try s.bind(1, blob: keyBytes)
        try s.bind(2, f.namespace)
        try s.bind(3, f.storedTags)
        try s.bind(4, hlc)
        try s.bind(5, Int64(clamping: f.createdMillis))
        try s.bind(6, Int64(clamping: f.expiresMillis))
        try s.bind(7, Int64(clamping: f.staleUntilMillis))
        try s.bind(8, row.codec)
        try s.bind(9, row.rawSize)
        try s.bind(10, blob: row.value)
        try s.bind(11, f.key.hex)
        try s.bind(12, existing?.id ?? prefix)
        try s.step()
        return w.db.changes > 0
    }

    /// Changes the policy; the next write (or `enforceDiskBudget`) evicts down to its disk budget.
    func apply(_ policy: EvictionPolicy) {
        eviction.withLock { $0 = policy }
    }

    /// Evicts when the file is over the disk budget, as a write does; returns how many entries went.
    func enforceDiskBudget() throws(AnswerCacheError) -> Int {
        let policy = eviction.withLock { $0 }
        return try writer.withLock { (w: inout Writer) throws(AnswerCacheError) -> Int in
            try evictIfOverBudget(&w, policy: policy)
        }
    }

    /// Over the disk budget, deletes the least recently accessed entries, a batch per
    /// transaction, down to the policy's target; returns how many went.
    private func evictIfOverBudget(_ w: inout Writer, policy: EvictionPolicy) throws(AnswerCacheError) -> Int {
        guard policy.diskIsOverBudget(try w.usedBytes()) else { return 0 }
        var evicted = 0
        while try w.usedBytes() > policy.diskTargetBytes {
            let total = try w.db.scalarInt("SELECT count(*) FROM entries") ?? 0
            guard total > 0 else { break }
            let chunk = EvictionPolicy.diskEvictionBatch(storedEntries: total)
            try w.db.transaction { () throws(AnswerCacheError) in
                defer { w.evict.reset() }
                try w.evict.bind(1, chunk)
                try w.evict.step()
                evicted += w.db.changes
            }
        }
        return evicted
    }

    /// Records the tombstone and deletes what it covers in one transaction committed with
    /// `synchronous=FULL`: when this returns, the invalidation survives a power cut. With
    /// `outboxCapacity`, the tombstone's outbox record is written in the same transaction, so a
    /// crash cannot keep the one without the other.
    func invalidate(_ tombstone: Tombstone, outboxCapacity: Int? = nil) throws(AnswerCacheError) -> Int {
        try writer.withLock { (w: inout Writer) throws(AnswerCacheError) -> Int in
            try w.db.execute("PRAGMA synchronous=FULL")
            defer { try? w.db.execute("PRAGMA synchronous=NORMAL") }
            return try w.db.transaction { () throws(AnswerCacheError) -> Int in
                let hlc = Int64(bitPattern: tombstone.hlc.rawValue)
                defer { w.tombstone.reset() }
                try w.tombstone.bind(1, tombstone.scope.storageKind)
                try w.tombstone.bind(2, tombstone.scope.storageValue)
                try w.tombstone.bind(3, hlc)
                try w.tombstone.step()
                if let outboxCapacity {
                    try InvalidationOutbox.record(tombstone, capacity: outboxCapacity, in: w.db, insert: w.outboxInsert)
                }
                let delete: SQLiteStatement
                switch tombstone.scope {
                case .key(let k):
                    delete = w.deleteKey
                    try delete.bind(1, blob: k.bytes)
                    try delete.bind(3, Self.prefix(k))
                case .tag(let t):
                    delete = w.deleteTag
                    try delete.bind(1, t)
                case .namespace(let n):
                    delete = w.deleteNamespace
                    try delete.bind(1, n)
                case .all:
                    delete = w.deleteAll
                    try delete.bind(1, 0)
                }
                defer { delete.reset() }
                try delete.bind(2, hlc)
                try delete.step()
                return w.db.changes
            }
        }
    }

    /// Copies the WAL into the main file and truncates it (at graceful shutdown).
    func checkpoint() throws(AnswerCacheError) {
        try writer.withLock { (w: inout Writer) throws(AnswerCacheError) in
            try w.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        }
    }

    /// Forgets tombstones older than `horizon` and entries past their stale-while-revalidate window.
    func maintain(tombstoneHorizon horizon: HLCTimestamp, nowMillis: UInt64) throws(AnswerCacheError) {
        try writer.withLock { (w: inout Writer) throws(AnswerCacheError) in
            try w.db.transaction { () throws(AnswerCacheError) in
                try w.db.execute("DELETE FROM tombstones WHERE hlc < \(Int64(bitPattern: horizon.rawValue))")
                try w.db.execute("DELETE FROM entries WHERE stale_until_ms <= \(Int64(clamping: nowMillis))")
            }
        }
    }

    /// The newest clock reading stored in the file (entries and tombstones), so a restarted
    /// gateway whose wall clock went backwards still stamps later events greater.
    func newestReading() throws(AnswerCacheError) -> HLCTimestamp {
        try reader.withLock { (r: inout Reader) throws(AnswerCacheError) -> HLCTimestamp in
            let entries = try r.db.scalarInt("SELECT max(hlc) FROM entries") ?? 0
            let tombstones = try r.db.scalarInt("SELECT max(hlc) FROM tombstones") ?? 0
            return HLCTimestamp(rawValue: max(UInt64(bitPattern: entries), UInt64(bitPattern: tombstones)))
        }
    }

    /// Tombstones in force (newer than `horizon`), for the in-memory checks at start-up.
    func tombstones(newerThan horizon: HLCTimestamp) throws(AnswerCacheError) -> [Tombstone] {
        try reader.withLock { (r: inout Reader) throws(AnswerCacheError) -> [Tombstone] in
            let statement = try r.db.prepare("SELECT kind, value, hlc FROM tombstones WHERE hlc >= ?1")
            try statement.bind(1, Int64(bitPattern: horizon.rawValue))
            var out: [Tombstone] = []
            while try statement.step() {
                let scope = try InvalidationScope(storageKind: statement.int64(0), value: statement.text(1))
                out.append(Tombstone(scope: scope, hlc: HLCTimestamp(rawValue: UInt64(bitPattern: statement.int64(2)))))
            }
            return out
        }
    }

    // MARK: Reader

    private final class Reader {
        let db: SQLiteDatabase
        let select: SQLiteStatement

        init(db: SQLiteDatabase) throws(AnswerCacheError) {
            self.db = db
            db.setBusyTimeout(milliseconds: 5000)
            try AnswerStore.tune(db, cacheKiB: AnswerStore.readerCacheKiB)
            select = try db.prepare("""
                SELECT namespace, tags, hlc, created_ms, expires_ms, stale_until_ms, codec, raw_size, value
                FROM entries WHERE key_prefix = ?2 AND key = ?1
                """, persistent: true)
        }
    }

    /// The stored entry for `key`, whatever its freshness; nil when absent.
    func read(_ key: CacheKey) throws(AnswerCacheError) -> CachedEntry? {
        let limit = options.maxAnswerBytes + Answer.storageHeaderBytes
        return try reader.withLock { (r: inout Reader) throws(AnswerCacheError) -> CachedEntry? in
            let s = r.select
            defer { s.reset() }
            try s.bind(1, blob: key.bytes)
            try s.bind(2, AnswerStore.prefix(key))
            guard try s.step() else { return nil }
            let codec = s.int64(6)
            let rawSize = s.int64(7)
            guard rawSize >= 0, rawSize <= Int64(limit) else {
                throw .corruptValue("declared size \(rawSize) is over the limit of \(limit) bytes")
            }
            let stored = s.blob(8)
            let raw: [UInt8]
            switch codec {
            case 0: raw = stored
            case 1: raw = try Zstd.decompress(stored, limit: Int(rawSize))
            default: throw .corruptValue("unknown codec \(codec)")
            }
            guard raw.count == rawSize else { throw .corruptValue("size \(raw.count) differs from the recorded \(rawSize)") }
            return CachedEntry(
                key: key, answer: try Answer(storageBytes: raw), namespace: s.text(0),
                tags: CachedEntry.tags(fromStored: s.text(1)),
                hlc: HLCTimestamp(rawValue: UInt64(bitPattern: s.int64(2))),
                createdMillis: UInt64(clamping: s.int64(3)), expiresMillis: UInt64(clamping: s.int64(4)),
                staleUntilMillis: UInt64(clamping: s.int64(5)))
        }
    }

    struct Counts: Sendable, Codable, Equatable {
        var entries: Int
        var tombstones: Int
        var bytes: Int
    }

    func counts() throws(AnswerCacheError) -> Counts {
        try reader.withLock { (r: inout Reader) throws(AnswerCacheError) -> Counts in
            let entries = try r.db.scalarInt("SELECT count(*) FROM entries") ?? 0
            let tombstones = try r.db.scalarInt("SELECT count(*) FROM tombstones") ?? 0
            let pages = try r.db.scalarInt("PRAGMA page_count") ?? 0
            let free = try r.db.scalarInt("PRAGMA freelist_count") ?? 0
            let pageSize = try r.db.scalarInt("PRAGMA page_size") ?? 4096
            return Counts(entries: Int(entries), tombstones: Int(tombstones), bytes: Int((pages - free) * pageSize))
        }
    }

    func integrityCheck() throws(AnswerCacheError) -> [String] {
        try reader.withLock { (r: inout Reader) throws(AnswerCacheError) -> [String] in try r.db.integrityCheck() }
    }

    /// Hex keys of every stored entry (for checks and tests).
    func storedKeys() throws(AnswerCacheError) -> [CacheKey] {
        try reader.withLock { (r: inout Reader) throws(AnswerCacheError) -> [CacheKey] in
            let s = try r.db.prepare("SELECT key FROM entries")
            var keys: [CacheKey] = []
            while try s.step() {
                guard let key = try? CacheKey(bytes: s.blob(0)) else { throw .corruptValue("stored key of wrong length") }
                keys.append(key)
            }
            return keys
        }
    }
}
