import Testing
@testable import HushClient

@Suite struct StoredValuesTests {
    @Test func exactBytes() {
        #expect(StoredValues.encodeU64(0x0102_0304_0506_0708) == [1, 2, 3, 4, 5, 6, 7, 8])
        #expect(StoredValues.u64([1, 2, 3, 4, 5, 6, 7, 8]) == 0x0102_0304_0506_0708)
        #expect(StoredValues.u32([0, 0, 1, 0]) == 256)
        #expect(StoredValues.u32List([0, 0, 0, 1, 0, 0, 0, 2]) == [1, 2])
        #expect(StoredValues.u32List([]) == [])
        #expect(StoredValues.encodeIDs([1, 128, 300]) == [0x01, 0x80, 0x01, 0xAC, 0x02])
        #expect(StoredValues.ids([0x01, 0x80, 0x01, 0xAC, 0x02]) == [1, 128, 300])
        #expect(StoredValues.strings(Array("contacts\nbob\n\ncarol".utf8)) == ["contacts", "bob", "carol"])
        #expect(StoredValues.text(Array("héllo".utf8)) == "héllo")
    }

    @Test func garbageIsNilOrARepairedValueNeverATrap() {
        #expect(StoredValues.u64([1, 2, 3]) == nil)
        #expect(StoredValues.u64([UInt8](repeating: 0, count: 9)) == nil)
        #expect(StoredValues.u32([1, 2, 3, 4, 5]) == nil)
        #expect(StoredValues.u32List([0, 0, 0, 1, 9]) == nil)
        #expect(StoredValues.ids([0x01, 0x80]) == [1])              // truncated tail ignored
        #expect(StoredValues.ids([0x80, 0x00]) == [])               // non-canonical
        #expect(StoredValues.text([0xFF, 0xFE]) == nil)
        #expect(StoredValues.strings([0xFF, 0x0A, 0x61]) == ["\u{FFFD}", "a"])
        // Found by FuzzClientStore: "\r\n" is one Character; the lines split at the byte.
        #expect(StoredValues.strings(Array("a\r\nb\n\r\r\nc".utf8)) == ["a\r", "b", "\r\r", "c"])
        for n in 0...20 {
            for fill in [0x00, 0x0A, 0x7F, 0x80, 0xFF] as [UInt8] {
                let bytes = [UInt8](repeating: fill, count: n)
                _ = StoredValues.u64(bytes); _ = StoredValues.u32(bytes); _ = StoredValues.u32List(bytes)
                _ = StoredValues.ids(bytes); _ = StoredValues.strings(bytes); _ = StoredValues.text(bytes)
            }
        }
    }
}
