import Foundation
import OutpostTesting
import Testing
@testable import GGUF

@Suite struct RealModelTests {
    @Test func metadataAndTensorTableOfTheDefaultModel() throws {
        let f = try GGUFFile(path: try TestModel.path())
        #expect(f.version == 3)
        #expect(f.fileSize == 98_362_432)
        #expect(f.string("general.architecture") == "llama")
        #expect(f.int("llama.block_count") == 30)
        #expect(f.int("llama.context_length") == 8192)
        #expect(f.int("llama.embedding_length") == 576)
        #expect(f.string("tokenizer.ggml.model") == "gpt2")
        #expect(f.string("tokenizer.ggml.pre") == "smollm")
        #expect(f.bool("tokenizer.ggml.add_bos_token") == false)
        #expect(f.stringArray("tokenizer.ggml.tokens")?.count == 49152)
        #expect(f.stringArray("tokenizer.ggml.merges")?.count == 48900)
        #expect(f.intArray("tokenizer.ggml.token_type")?.count == 49152)
        #expect(f.stringArray("tokenizer.ggml.tokens")?[1] == "<|im_start|>")
        #expect(f.string("tokenizer.chat_template")?.contains("<|im_start|>") == true)
        let eps = try #require(f.float("llama.attention.layer_norm_rms_epsilon"))
        #expect(abs(eps - 1e-5) < 1e-9)

        #expect(f.tensors.count == 272)
        let s = ModelSummary(f)
        #expect(s.tensorTypes == ["Q4_1": 210, "F32": 61, "Q8_0": 1])
        #expect(s.vocabSize == 49152)
        #expect(s.layers == 30)
        #expect(s.heads == 9)
        #expect(s.kvHeads == 3)
        #expect(s.quantization == "Q4_1")
        #expect(s.parameters == 134_515_008)

        let embd = try #require(f.tensor(named: "token_embd.weight"))
        #expect(embd.dimensions == [576, 49152])
        #expect(embd.type == .q8_0)
        #expect(try f.data(for: embd).count == 49152 * 576 / 32 * 34)
        let q = try #require(f.tensor(named: "blk.0.attn_q.weight"))
        #expect(q.type == .q4_1)
        #expect(q.dimensions == [576, 576])
        // Every tensor lies inside the file, aligned, without overlapping the next one.
        let sorted = f.tensors.sorted { $0.fileOffset < $1.fileOffset }
        for (a, b) in zip(sorted, sorted.dropFirst()) {
            #expect(a.fileOffset + (a.byteCount ?? 0) <= b.fileOffset)
        }
        for t in f.tensors {
            #expect(t.fileOffset % f.alignment == 0)
            #expect(t.fileOffset + (t.byteCount ?? .max) <= f.fileSize)
        }
        // The first Q8_0 block of the embedding has a finite, non-zero f16 scale.
        let block = try f.data(for: embd)
        let scaleBits = UInt16(block[0]) | UInt16(block[1]) << 8
        #expect(scaleBits & 0x7C00 != 0x7C00)
        #expect(scaleBits != 0)
    }
}
