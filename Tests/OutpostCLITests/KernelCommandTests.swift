import Foundation
import OutpostTesting
import Testing

/// The kernel path as the CLI exposes it: OUTPOST_KERNEL, `model info`, `bench --kernels`.
@Suite struct KernelCommandTests {
    @Test func forcedScalarPathIsReported() throws {
        let r = try OutpostBinary.run(["model", "info", "--model", try TestModel.path(), "--json"],
                                      environment: ["OUTPOST_KERNEL": "scalar"])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(object["kernel"] as? String == "scalar")
    }

    @Test(arguments: ["no-such-path", wrongArchitecturePath])
    func unusableKernelPathIsAClearError(value: String) throws {
        let r = try OutpostBinary.run(["model", "info", "--model", try TestModel.path()],
                                      environment: ["OUTPOST_KERNEL": value])
        #expect(r.status == 1)
        #expect(r.stdout.isEmpty)
        #expect(r.stderr.contains("OUTPOST_KERNEL=\(value)"), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
    }

    static var wrongArchitecturePath: String {
        #if arch(x86_64)
        return "neon"
        #else
        return "avx2"
        #endif
    }

    /// Without --kernels, bench runs the model: a tiny run has the contract's JSON shape.
    @Test func modelBenchmarkJSONShape() throws {
        let r = try OutpostBinary.run(["bench", "--model", try TestModel.path(), "--prompt-tokens", "4",
                                       "--gen-tokens", "2", "--reps", "1", "--json"], timeout: 300)
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        for key in ["prompt_tokens_per_s", "gen_tokens_per_s"] {
            let stats = try #require(object[key] as? [String: Double], "\(key)")
            #expect((stats["min"] ?? 0) > 0 && (stats["min"] ?? 0) <= (stats["median"] ?? 0) && (stats["median"] ?? 0) <= (stats["max"] ?? 0))
        }
        #expect((object["peak_rss_bytes"] as? Int ?? 0) > 0)
        #expect(object["kernel"] as? String != nil)
    }

    /// --shared-prefix prints one line per figure, and the reused prefix gives the fresh logits.
    @Test func sharedPrefixBenchmarkReport() throws {
        let r = try OutpostBinary.run(["bench", "--model", try TestModel.path(), "--shared-prefix", "--threads", "1",
                                       "--reps", "1"], timeout: 300)
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        for prefix in ["model:", "kernel:", "prompt:", "prefill: fresh", "logits:"] {
            #expect(lines.contains { $0.hasPrefix(prefix) }, "no line starts with \(prefix): \(r.stdout)")
        }
        #expect(lines.contains("logits:  identical to a fresh evaluation"), "\(r.stdout)")
    }

    @Test func modelBenchmarkRejectsAThreadList() throws {
        let r = try OutpostBinary.run(["bench", "--model", try TestModel.path(), "--threads", "1,2"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("--threads takes one thread count"), "\(r.stderr)")
    }

    /// A minimal run (one type, one thread, tiny time budget): the JSON has every shape with
    /// positive figures and the read bandwidth beside them. Figures themselves are not judged.
    @Test func kernelBenchmarkJSONShape() throws {
        // K types skip the shapes whose rows are not whole super-blocks (576 columns)
        let k = try OutpostBinary.run(["bench", "--kernels", "--json", "--types", "Q4_K", "--threads", "1",
                                       "--min-time", "0.01", "--working-set-mib", "256"], timeout: 300)
        #expect(k.status == 0, "\(k.stderr)")
        let kObject = try #require(try JSONSerialization.jsonObject(with: Data(k.stdout.utf8)) as? [String: Any])
        let kShapes = Set(try #require(kObject["results"] as? [[String: Any]]).compactMap { $0["cols"] as? Int })
        #expect(kShapes == [1536, 2048, 4096])

        let r = try OutpostBinary.run(["bench", "--kernels", "--json", "--types", "Q8_0", "--threads", "1",
                                       "--min-time", "0.01", "--working-set-mib", "256"], timeout: 300)
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(object["kernel"] as? String != nil)
        #expect((object["in_cache_gb_per_s"] as? [String: Double])?["Q8_0"] ?? 0 > 0)
        let bandwidth = try #require(object["read_bandwidth_gb_per_s"] as? [String: Double])
        #expect((bandwidth["1"] ?? 0) > 0)
        let results = try #require(object["results"] as? [[String: Any]])
        #expect(results.count == 6)
        let shapes = Set(results.compactMap { r in (r["rows"] as? Int).flatMap { rows in (r["cols"] as? Int).map { "\(rows)x\($0)" } } })
        #expect(shapes == ["576x576", "1536x576", "576x1536", "49152x576", "576x2048", "4096x4096"])
        for res in results {
            #expect((res["gb_per_s"] as? Double ?? 0) > 0)
            #expect(res["type"] as? String == "Q8_0")
        }
        #expect(results.first { $0["rows"] as? Int == 4096 }?["matrix_bytes"] as? Int == 4096 * 4096 / 32 * 34)
    }

    @Test func kernelBenchmarkRefusesASmallWorkingSet() throws {
        let r = try OutpostBinary.run(["bench", "--kernels", "--working-set-mib", "16"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("at least 256"), "\(r.stderr)")
    }
}
