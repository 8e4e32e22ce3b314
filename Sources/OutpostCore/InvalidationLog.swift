/// The durable outbox of local invalidations waiting to be announced to peer gateways, and the
/// little state PeerSync must keep across restarts. `AnswerCache` implements it in the cache's own
/// SQLite file (`InvalidationOutbox`); `Agent` wires it into `PeerSync`.
public protocol InvalidationLog: Sendable {
    /// Records `tombstone` (a local invalidation) for publication; durable when it returns.
    func append(_ tombstone: Tombstone) throws
    /// The oldest unpublished records, oldest first, at most `limit`.
    func pending(limit: Int) throws -> [PendingInvalidation]
    /// Forgets the records up to and including `sequence` (the broker acknowledged them).
    func markPublished(through sequence: Int64) throws
    /// Whether this gateway has ever held a broker session (persisted), so that a CONNACK without
    /// a session after a restart is recognised as a lost session.
    func hadSession() throws -> Bool
    func recordSession() throws
    /// This outbox's epoch: a random id made once with the file. Sequence numbers count within it,
    /// so peers can tell a new outbox (a reinstalled gateway) from a gap.
    func epoch() throws -> String
    /// The newest sequence applied from a peer's outbox (persisted), for gap detection.
    func peerPosition(origin: String) throws -> PeerPosition?
    func recordPeerPosition(_ position: PeerPosition, origin: String) throws
}

/// How far a peer's invalidations have been applied: its outbox epoch and the last sequence.
public struct PeerPosition: Sendable, Hashable {
    public let epoch: String
    public let sequence: Int64

    public init(epoch: String, sequence: Int64) {
        self.epoch = epoch
        self.sequence = sequence
    }
}

/// One outbox record: its sequence number (increasing) and the tombstone.
public struct PendingInvalidation: Sendable, Hashable {
    public let sequence: Int64
    public let tombstone: Tombstone

    public init(sequence: Int64, tombstone: Tombstone) {
        self.sequence = sequence
        self.tombstone = tombstone
    }
}

/// What PeerSync needs of the cache: apply a peer's tombstone through the same durable path as a
/// local one, and invalidate locally (without announcing it) when it cannot vouch for what it holds.
public protocol InvalidationTarget: Sendable {
    /// Applies a tombstone received from a peer; durable when it returns.
    func apply(remote tombstone: Tombstone) throws
    /// Invalidates `scope` locally; durable when it returns. PeerSync does not publish it.
    func invalidate(_ scope: InvalidationScope) throws -> Tombstone
}
