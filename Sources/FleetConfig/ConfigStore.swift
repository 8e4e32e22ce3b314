#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import FoundationEssentials
import OutpostCore

/// The durable side of config apply, in `<state dir>/config/`:
/// - `committed.json` — the live record (`ConfigRecord`), `"state":"pending"` until health-checked;
/// - `last-known-good.json` — the record it replaced, restored on failure;
/// - `applied-version` — `fleet N` and `gateway M` lines: the newest version taken up from each
///   source, so neither a replay nor a downgrade is applied again (a rolled-back version included).
///
/// Every file is replaced whole: written to `NAME.tmp`, fsynced, renamed over `NAME`, then the
/// directory fsynced. A crash therefore leaves each file either old or new, and `recover()` turns a
/// record still pending into last-known-good, so after a restart exactly one of old or new is live.
public struct ConfigStore: Sendable {
    public static let committedFile = "committed.json"
    public static let lastKnownGoodFile = "last-known-good.json"
    public static let appliedVersionFile = "applied-version"

    /// One durable file-system step; `plan` lists them so a test can stop after any one.
    public enum Step: Sendable, Equatable {
        /// Write `data` to `name.tmp` and fsync it.
        case writeTemporary(name: String, data: Data)
        /// Rename `name.tmp` over `name`.
        case rename(name: String)
        /// fsync the directory so the rename is durable.
        case syncDirectory
    }

    public let directory: String

    /// `stateDirectory/config`, created if missing.
    public init(stateDirectory: String) throws(FleetConfigError) {
        directory = Paths.join(stateDirectory, "config")
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw .storage(directory, "cannot create the directory: \(error)")
        }
    }

    private func path(_ name: String) -> String { Paths.join(directory, name) }

    // MARK: reading

    /// The applied versions (zero when nothing was ever applied).
    public func appliedVersions() throws(FleetConfigError) -> AppliedVersions {
        guard let data = FileManager.default.contents(atPath: path(Self.appliedVersionFile)) else { return .init() }
        var versions = AppliedVersions()
        for line in String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline) {
            let parts = line.split(separator: " ")
            guard parts.count == 2, let v = UInt64(parts[1]) else {
                throw .storage(path(Self.appliedVersionFile), "unreadable line \"\(line.prefix(40))\"")
            }
            switch parts[0] {
            case "fleet": versions.fleet = v
            case "gateway": versions.gateway = v
            default: throw .storage(path(Self.appliedVersionFile), "unknown source \"\(parts[0])\"")
            }
        }
        return versions
    }

    private func record(_ name: String) throws(FleetConfigError) -> ConfigRecord? {
        guard let data = FileManager.default.contents(atPath: path(name)) else { return nil }
        do { return try ConfigRecord.decode(data) } catch {
            throw .storage(path(name), "\(error.message); move the file aside to start from the agent's own configuration")
        }
    }

    /// The committed record as stored (possibly pending), or `.empty`.
    public func committed() throws(FleetConfigError) -> ConfigRecord { try record(Self.committedFile) ?? .empty }

    /// The last-known-good record, or `.empty`.
    public func lastKnownGood() throws(FleetConfigError) -> ConfigRecord { try record(Self.lastKnownGoodFile) ?? .empty }

    /// At start-up: drops leftover temporary files and rolls a pending record (a crash between
    /// persist and commit) back to last-known-good. Returns the live record and whether it rolled back.
    public func recover() throws(FleetConfigError) -> (live: ConfigRecord, rolledBack: Bool) {
        for name in [Self.committedFile, Self.lastKnownGoodFile, Self.appliedVersionFile] {
            unlink(path(name + ".tmp"))
        }
        let current = try committed()
        guard current.state == .pending else { return (current, false) }
        let lkg = try lastKnownGood()
        try run(plan(restore: lkg))
        return (lkg, true)
    }

    // MARK: plans

    private func replace(_ name: String, with data: Data) -> [Step] {
        [.writeTemporary(name: name, data: data), .rename(name: name), .syncDirectory]
    }

    /// Last-known-good first, then the versions, then the pending candidate: until the candidate's
    /// rename the old record is live; after it, `recover()` rolls back unless `commit` follows.
    public func plan(persist candidate: ConfigRecord, lastKnownGood: ConfigRecord) -> [Step] {
        var lkg = lastKnownGood
        lkg.state = .committed
        var pending = candidate
        pending.state = .pending
        let versions = Data("fleet \(candidate.versions.fleet)\ngateway \(candidate.versions.gateway)\n".utf8)
        return replace(Self.lastKnownGoodFile, with: lkg.encoded())
            + replace(Self.appliedVersionFile, with: versions)
            + replace(Self.committedFile, with: pending.encoded())
    }

    public func plan(commit record: ConfigRecord) -> [Step] {
        var committed = record
        committed.state = .committed
        return replace(Self.committedFile, with: committed.encoded())
    }

    public func plan(restore lastKnownGood: ConfigRecord) -> [Step] { plan(commit: lastKnownGood) }

    // MARK: executing

    public func run(_ steps: [Step]) throws(FleetConfigError) {
        for step in steps { try run(step) }
    }

    public func run(_ step: Step) throws(FleetConfigError) {
        switch step {
        case .writeTemporary(let name, let data):
            let tmp = path(name + ".tmp")
            let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw .storage(tmp, "cannot open for writing", errno: errno) }
            defer { close(fd) }
            var written = 0
            while written < data.count {
                let n = data.withUnsafeBytes { write(fd, $0.baseAddress! + written, data.count - written) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw .storage(tmp, "write failed", errno: errno) }
                written += n
            }
            guard fsync(fd) == 0 else { throw .storage(tmp, "fsync failed", errno: errno) }
        case .rename(let name):
            guard rename(path(name + ".tmp"), path(name)) == 0 else { throw .storage(path(name), "rename failed", errno: errno) }
        case .syncDirectory:
            let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard fd >= 0 else { throw .storage(directory, "cannot open the directory", errno: errno) }
            defer { close(fd) }
            guard fsync(fd) == 0 else { throw .storage(directory, "fsync of the directory failed", errno: errno) }
        }
    }
}
