import Testing
import OutpostTesting
@testable import AnswerCache

@Suite struct ZstdTests {
    @Test func roundTrip() throws {
        let input = Array(String(repeating: "the quick brown fox jumps over the lazy dog. ", count: 200).utf8)
        let frame = try Zstd.compress(input)
        #expect(frame.count < input.count / 5)
        #expect(try Zstd.decompress(frame, limit: input.count) == input)
    }

    @Test func emptyInputRoundTrips() throws {
        let frame = try Zstd.compress([])
        #expect(try Zstd.decompress(frame, limit: 0) == [])
    }

    @Test func corruptFrameThrows() throws {
        var frame = try Zstd.compress(Array(repeating: 7, count: 4096))
        #expect(throws: AnswerCacheError.self) { try Zstd.decompress(Array(frame.prefix(3)), limit: 1 << 20) }
        frame[frame.count / 2] ^= 0xFF
        frame[frame.count - 1] ^= 0xFF
        let error = #expect(throws: AnswerCacheError.self) { try Zstd.decompress(frame, limit: 1 << 20) }
        #expect(error?.isDecompression == true)
        let garbage: [UInt8] = Array("definitely not zstd".utf8)
        #expect(throws: AnswerCacheError.self) { try Zstd.decompress(garbage, limit: 1 << 20) }
    }

    @Test func declaredSizeOverLimitIsRefused() throws {
        // 64 MiB of zeros compresses to a few kilobytes: a decompression bomb for a small limit.
        let bomb = try Zstd.compress([UInt8](repeating: 0, count: 64 << 20), level: 1)
        #expect(bomb.count < 64 << 10)
        let error = #expect(throws: AnswerCacheError.self) { try Zstd.decompress(bomb, limit: 1 << 20) }
        #expect(error?.isDecompression == true)
    }

    @Test func unknownSizeFrameIsStreamedWithinTheLimit() throws {
        // A frame without a declared size, as streaming compressors write it.
        let content: [UInt8] = Array(String(repeating: "abcdefgh", count: 10_000).utf8)
        let frame = try streamingFrame(content)
        #expect(try Zstd.decompress(frame, limit: content.count) == content)
        let error = #expect(throws: AnswerCacheError.self) { try Zstd.decompress(frame, limit: content.count - 1) }
        #expect(error?.isDecompression == true)
        #expect(throws: AnswerCacheError.self) { try Zstd.decompress(Array(frame.dropLast(4)), limit: content.count) }
    }
}

@Suite struct SQLiteWrapperTests {
    @Test func walModeReadsBack() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let db = try SQLiteDatabase(path: dir.file("wal.sqlite").path)
        #expect(try db.scalarText("PRAGMA journal_mode=WAL") == "wal")
        try db.execute("CREATE TABLE t(a INTEGER, b TEXT, c BLOB)")
        let reopened = try SQLiteDatabase(path: dir.file("wal.sqlite").path)
        #expect(try reopened.scalarText("PRAGMA journal_mode") == "wal")
    }

    @Test func prepareBindStepReset() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let db = try SQLiteDatabase(path: dir.file("t.sqlite").path)
        try db.execute("CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT, c BLOB)")
        let insert = try db.prepare("INSERT INTO t(a, b, c) VALUES (?, ?, ?)", persistent: true)
        try db.transaction { () throws(AnswerCacheError) in
            for i in 0..<10 {
                try insert.bind(1, i)
                try insert.bind(2, "row \(i)")
                try insert.bind(3, blob: [UInt8(i), 0, 255])
                #expect(try insert.step() == false)
                insert.reset()
            }
        }
        let select = try db.prepare("SELECT b, c FROM t WHERE a = ?")
        try select.bind(1, 7)
        #expect(try select.step())
        #expect(select.text(0) == "row 7")
        #expect(select.blob(1) == [7, 0, 255])
        #expect(try select.step() == false)
        #expect(try db.scalarInt("SELECT count(*) FROM t") == 10)
    }

    @Test func errorsCarryCodesAndMessage() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let db = try SQLiteDatabase(path: dir.file("e.sqlite").path)
        try db.execute("CREATE TABLE t(a INTEGER PRIMARY KEY)")
        try db.execute("INSERT INTO t VALUES (1)")
        let error = #expect(throws: AnswerCacheError.self) { try db.execute("INSERT INTO t VALUES (1)") }
        #expect(error?.sqliteCode == 19) // SQLITE_CONSTRAINT
        #expect(error?.sqliteExtendedCode == 1555) // SQLITE_CONSTRAINT_PRIMARYKEY
        #expect(error?.message.contains("UNIQUE") == true)
        let prepareError = #expect(throws: AnswerCacheError.self) { try db.prepare("SELEC nonsense") }
        #expect(prepareError?.sqliteCode == 1)
    }

    @Test func failedTransactionRollsBack() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let db = try SQLiteDatabase(path: dir.file("r.sqlite").path)
        try db.execute("CREATE TABLE t(a INTEGER PRIMARY KEY)")
        #expect(throws: AnswerCacheError.self) {
            try db.transaction { () throws(AnswerCacheError) in
                try db.execute("INSERT INTO t VALUES (1)")
                try db.execute("INSERT INTO t VALUES (1)")
            }
        }
        #expect(try db.scalarInt("SELECT count(*) FROM t") == 0)
    }

    @Test func openingADirectoryFails() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let error = #expect(throws: AnswerCacheError.self) {
            let db = try SQLiteDatabase(path: dir.path, flags: [.readWrite])
            _ = try db.scalarInt("SELECT count(*) FROM sqlite_master")
        }
        #expect(error?.sqliteCode != nil)
    }
}
