import AnswerCache
import FleetConfig
import Foundation
import Logging

extension Agent {
    /// Before the model loads: recovers the config store (a crash mid-apply rolls back), applies the
    /// committed fleet config again, then the `--fleet-config` file if one was given. Returns the
    /// target, whose configuration is the one to run with, and the applier for `/health`.
    func startFleetConfig() async throws -> (target: AgentConfigTarget, applier: ConfigApplier) {
        let c = configuration
        let target = AgentConfigTarget(base: c)
        let applier: ConfigApplier
        do {
            let keys = try c.trustedKeyFiles.map { path throws(FleetConfigError) in try TrustedKey.load(path: path) }
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
        if let status = await applier.start(now: now) { log(status) }
        if let file = c.fleetConfigFile {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw StartError(description: "cannot read the fleet config \(file)")
            }
            log(await applier.apply(data, now: now))
        }
        return (target, applier)
    }

    private func log(_ status: ConfigStatus) {
        var metadata: Logger.Metadata = ["version": "\(status.version)", "state": "\(status.state.rawValue)"]
        if let error = status.error { metadata["error"] = "\(error)" }
        if status.state == .applied {
            logger.info("fleet config applied", metadata: metadata)
        } else {
            logger.warning("fleet config not applied", metadata: metadata)
        }
    }
}
