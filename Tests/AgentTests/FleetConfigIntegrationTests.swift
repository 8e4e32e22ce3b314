import Foundation
import OutpostTesting
import Testing

/// `outpost run --trust-key … --fleet-config …`: signed configs applied at start with a real model
/// load as the health check, kept across restarts, and rolled back when the model is missing or broken.
@Suite(.serialized) struct FleetConfigIntegrationTests {
    static func sign(_ dir: TemporaryDirectory, _ payload: String, version: Int, name: String) throws -> String {
        let cfg = dir.file("\(name).json").path
        try payload.write(toFile: cfg, atomically: true, encoding: .utf8)
        let out = dir.file("\(name).signed.json").path
        let r = try OutpostBinary.run(["config", "sign", "--key", dir.file("keys/fleet.key").path, "--version", "\(version)",
                                       "--in", cfg, "--out", out])
        #expect(r.status == 0, "\(r.stderr)")
        return out
    }

    /// Starts an agent on `dir` (the model load and the health check's test prompt take a while
    /// in debug builds on a busy machine, hence the long wait).
    static func agent(_ arguments: [String], _ dir: TemporaryDirectory) throws -> AgentProcess {
        let agent = try AgentProcess(extraArguments: arguments, directory: dir, waitReady: false)
        try agent.waitReady(timeout: 300)
        return agent
    }

    static func health(_ agent: AgentProcess) throws -> [String: Any] { try agent.curl(["/health"]).json ?? [:] }

    static func answers(_ agent: AgentProcess) throws -> Bool {
        let r = try agent.post("/v1/chat/completions", json: #"{"messages":[{"role":"user","content":"Hi"}],"max_tokens":3}"#)
        return r.status == 200
    }

    @Test func appliedKeptAcrossRestartAndBrokenModelsRolledBack() throws {
        let keys = try TemporaryDirectory(prefix: "outpost-fleet-keys")
        defer { keys.remove() }
        #expect(try OutpostBinary.run(["config", "keygen", "--out", keys.file("keys").path, "--key-id", "ops"]).status == 0)
        let pub = keys.file("keys/fleet.pub").path
        let model = try TestModel.path()
        let good = try Self.sign(keys, #"{"model":{"path":"\#(model)"},"generation":{"max_tokens":16}}"#, version: 1, name: "good")
        let missing = try Self.sign(keys, #"{"model":{"path":"/nonexistent/model.gguf"}}"#, version: 2, name: "missing")
        let truncated = keys.file("truncated.gguf").path
        let head = try FileHandle(forReadingFrom: URL(fileURLWithPath: model)).read(upToCount: 1 << 20) ?? Data()
        try head.write(to: URL(fileURLWithPath: truncated))
        let broken = try Self.sign(keys, #"{"model":{"path":"\#(truncated)"}}"#, version: 3, name: "broken")

        let dir = try TemporaryDirectory(prefix: "outpost-agent")
        var agents: [AgentProcess] = []
        defer { withExtendedLifetime(agents) {} }

        // 1. Applied at start; /health carries its version.
        let first = try Self.agent(["--trust-key", pub, "--fleet-config", good], dir)
        agents.append(first)
        #expect(try Self.health(first)["config_version"] as? Int == 1, "\(first.log())")
        #expect(try Self.answers(first))
        #expect(first.stop() == 0)

        // 2. Kept across a restart: the committed config is applied again, and the same file given
        //    again is a replay, rejected without changing anything.
        let second = try Self.agent(["--trust-key", pub, "--fleet-config", good], dir)
        agents.append(second)
        #expect(try Self.health(second)["config_version"] as? Int == 1, "\(second.log())")
        #expect(second.log().contains("state=rejected"), "\(second.log())")
        #expect(second.log().contains("already applied"), "\(second.log())")
        #expect(try Self.answers(second))
        #expect(second.stop() == 0)

        // 3. A missing model and a broken model are rolled back; the agent keeps answering on the old one.
        for (file, version) in [(missing, 2), (broken, 3)] {
            let agent = try Self.agent(["--trust-key", pub, "--fleet-config", file], dir)
            agents.append(agent)
            #expect(try Self.health(agent)["config_version"] as? Int == 1, "\(agent.log())")
            #expect(try Self.answers(agent))
            #expect(agent.log().contains("state=rolled_back"), "\(agent.log())")
            #expect(agent.log().contains("version=\(version)"), "\(agent.log())")
            #expect(agent.stop() == 0)
        }

        let show = try OutpostBinary.run(["config", "show", "--state-dir", first.stateDirectory])
        #expect(show.status == 0, "\(show.stderr)")
        let o = try #require(try JSONSerialization.jsonObject(with: Data(show.stdout.utf8)) as? [String: Any])
        #expect(o["version"] as? Int == 1)
        #expect(((o["config"] as? [String: Any])?["model"] as? [String: Any])?["path"] as? String == model)
    }

    @Test func killNineDuringAnApplyLeavesOldOrNewLiveNeverAMix() throws {
        let keys = try TemporaryDirectory(prefix: "outpost-fleet-keys")
        defer { keys.remove() }
        #expect(try OutpostBinary.run(["config", "keygen", "--out", keys.file("keys").path, "--key-id", "ops"]).status == 0)
        let pub = keys.file("keys/fleet.pub").path
        let model = try TestModel.path()
        let old = try Self.sign(keys, #"{"model":{"path":"\#(model)"},"generation":{"max_tokens":16}}"#, version: 1, name: "old")
        let new = try Self.sign(keys, #"{"model":{"path":"\#(model)"},"generation":{"max_tokens":8}}"#, version: 2, name: "new")
        let dir = try TemporaryDirectory(prefix: "outpost-agent")
        var agents: [AgentProcess] = []
        defer { withExtendedLifetime(agents) {} }

        let first = try Self.agent(["--trust-key", pub, "--fleet-config", old], dir)
        agents.append(first)
        #expect(first.stop() == 0)

        // Killed while starting up with the new config: before, during or after its persist/switch/check.
        let crashing = try AgentProcess(extraArguments: ["--trust-key", pub, "--fleet-config", new], directory: dir, waitReady: false)
        agents.append(crashing)
        Thread.sleep(forTimeInterval: 3)
        crashing.kill9()

        let restarted = try Self.agent(["--trust-key", pub], dir)
        agents.append(restarted)
        let version = try #require(try Self.health(restarted)["config_version"] as? Int)
        #expect(version == 1 || version == 2)
        let show = try OutpostBinary.run(["config", "show", "--state-dir", first.stateDirectory])
        let o = try #require(try JSONSerialization.jsonObject(with: Data(show.stdout.utf8)) as? [String: Any])
        #expect(o["state"] as? String == "committed")
        #expect(o["version"] as? Int == version)
        let maxTokens = ((o["config"] as? [String: Any])?["generation"] as? [String: Any])?["max_tokens"] as? Int
        #expect(maxTokens == (version == 1 ? 16 : 8), "version \(version) with max_tokens \(maxTokens ?? -1): a mix")
        #expect(try Self.answers(restarted))
        #expect(restarted.stop() == 0)
    }
}
