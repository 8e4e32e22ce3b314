import AnswerCache
import FleetConfig
import FoundationEssentials
import OutpostCore
import Logging
import PeerSync

extension Agent {
    /// What `startFleetConfig` leaves for the rest of the start.
    struct FleetStart: Sendable {
        /// Applies configs; its configuration is the one to run with.
        let target: AgentConfigTarget
        let applier: ConfigApplier
        /// The outcome at start: the `--fleet-config` file's, or a rollback's, or the committed
        /// config applied again; nil when no fleet config was ever applied.
        let status: ConfigStatus?
        /// What a `--fleet-config` applied at this start asks to invalidate (done once the cache is open).
        let pendingInvalidation: FleetSettings?
        /// Whose invalidations are accepted: the trusted fleet keys and the live config's members;
        /// nil when no fleet key is trusted (nothing to check signatures against).
        let membership: Membership?
    }

    /// Before the model loads: recovers the config store (a crash mid-apply rolls back), applies the
    /// committed fleet config again, then the `--fleet-config` file if one was given.
    func startFleetConfig() async throws -> FleetStart {
        let c = configuration
        let keys: [TrustedKey]
        do {
            keys = try c.trustedKeyFiles.map { path throws(FleetConfigError) in try TrustedKey.load(path: path) }
        } catch {
            throw StartError(description: "fleet config: \(error.message)")
        }
        let membership = keys.isEmpty ? nil
            : Membership(fleetKeys: Dictionary(keys.map { ($0.keyID, $0.publicKey) }, uniquingKeysWith: { a, _ in a }))
        let target = AgentConfigTarget(base: c, membership: membership)
        let applier: ConfigApplier
        do {
            if c.fleetConfigFile != nil, keys.isEmpty {
                throw StartError(description: "--fleet-config needs at least one --trust-key to verify it with")
            }
            let verifier = ConfigVerifier(trustedKeys: keys, gatewayID: c.gatewayID,
                                          zstdDecompress: { frame, limit in try Zstd.decompress(frame, limit: limit) })
            applier = try ConfigApplier(store: ConfigStore(stateDirectory: c.stateDirectory), verifier: verifier, target: target)
        } catch let error as FleetConfigError {
            throw StartError(description: "fleet config: \(error.message)")
        }
        let now = Int64(Date().timeIntervalSince1970)
        var status = await applier.start(now: now)
        if let status { FleetConfigService.log(status, logger: logger) }
        if status == nil, await applier.live != .empty {
            let live = await applier.live
            status = ConfigStatus(version: live.versions.fleet, state: .applied, source: .fleet, at: now)
        }
        var pending: FleetSettings?
        if let file = c.fleetConfigFile {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw StartError(description: "cannot read the fleet config \(file)")
            }
            let fileStatus = await applier.apply(data, now: now)
            FleetConfigService.log(fileStatus, logger: logger)
            if fileStatus.state == .applied {
                let live = await applier.live
                pending = fileStatus.source == .gateway ? live.gateway : live.fleet
            }
            // A replay of what is live (the same file given at every start) says nothing new.
            if fileStatus.state != .rejected || status == nil { status = fileStatus }
        }
        return FleetStart(target: target, applier: applier, status: status, pendingInvalidation: pending, membership: membership)
    }
}

extension Agent {
    /// One line at start saying who may invalidate this gateway's cache.
    static func logInvalidationAuth(_ pc: PeerSync.Configuration, logger: Logger) {
        let key = pc.identity.map { Data($0.publicKey.rawRepresentation).base64EncodedString() } ?? "none"
        guard let membership = pc.membership else {
            logger.warning("invalidations are not authenticated", metadata: [
                "reason": "no --trust-key: any client that may publish on the invalidate topic can invalidate",
                "member_key": "\(key)",
            ])
            return
        }
        logger.info("invalidations authenticated", metadata: [
            "fleet_keys": "\(membership.fleetKeys.keys.sorted().joined(separator: ","))",
            "members_listed": "\(membership.members.count)",
            "member_key": "\(key)",
            "certified": "\(pc.identity?.certificate != nil)",
        ])
    }
}
