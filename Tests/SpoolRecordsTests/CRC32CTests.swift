import SpoolRecords
import SpoolTestSupport
import Testing

@Suite struct CRC32CTests {
    let vector = Array("123456789".utf8)

    @Test func knownVectorAutomatic() {
        #expect(CRC32C.checksum(vector) == 0xE306_9283)
    }

    @Test func knownVectorSoftware() {
        #expect(CRC32C.checksum(vector, using: .software) == 0xE306_9283)
    }

    @Test(.enabled(if: CRC32C.hardwareAvailable)) func knownVectorHardware() {
        #expect(CRC32C.checksum(vector, using: .hardware) == 0xE306_9283)
    }

    @Test func moreVectors() {
        // RFC 3720 (iSCSI) B.4 test vectors.
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32), using: .software) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32), using: .software) == 0x62A8_AB43)
        #expect(CRC32C.checksum((0..<32).map { UInt8($0) }, using: .software) == 0x46DD_794E)
        #expect(CRC32C.checksum((0..<32).map { UInt8(31 - $0) }, using: .software) == 0x113F_DB5C)
        #expect(CRC32C.checksum([], using: .software) == 0)
    }

    @Test func hardwareMatchesSoftwareOnRandomBuffersAndAlignments() {
        var rng = SeededRandom(test: "hardwareMatchesSoftwareOnRandomBuffersAndAlignments")
        let big = (0..<5000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        big.withUnsafeBytes { raw in
            for alignment in 0..<8 {
                for length in [0, 1, 2, 3, 7, 8, 9, 15, 16, 31, 32, 33, 63, 64, 100, 255, 1000, 4096, 4991] where alignment + length <= raw.count {
                    let span = UnsafeRawBufferPointer(rebasing: raw[alignment..<(alignment + length)])
                    let soft = CRC32C.checksum(span, using: .software)
                    #expect(CRC32C.checksum(span) == soft, "automatic at alignment \(alignment) length \(length)")
                    if CRC32C.hardwareAvailable {
                        #expect(CRC32C.checksum(span, using: .hardware) == soft, "hardware at alignment \(alignment) length \(length)")
                    }
                }
            }
        }
    }

    @Test func continuationEqualsOneShot() {
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        bytes.withUnsafeBytes { raw in
            let whole = CRC32C.checksum(raw)
            for split in [0, 1, 7, 500, 999, 1000] {
                let first = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<split]))
                let both = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[split...]), continuing: first)
                #expect(both == whole)
                let firstSoft = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<split]), using: .software)
                #expect(CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[split...]), continuing: firstSoft, using: .software) == whole)
            }
        }
    }
}
