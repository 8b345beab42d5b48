use std::io::Write;

use super::*;

pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub(crate) fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data) in entries {
        w.start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

pub(crate) fn utf16le(text: &str, bom: bool) -> Vec<u8> {
    let mut out = if bom { vec![0xff, 0xfe] } else { vec![] };
    for u in text.encode_utf16() {
        out.extend(u.to_le_bytes());
    }
    out
}

fn texts(parts: &[Part]) -> Vec<(String, String)> {
    parts
        .iter()
        .map(|p| match &p.content {
            Content::Text(t) => (p.at.clone(), t.clone()),
            Content::Unreadable(why) => (p.at.clone(), format!("UNREADABLE {why}")),
        })
        .collect()
}

#[test]
fn encodings_are_detected_by_bom_by_zero_bytes_or_by_trying() {
    let csv = "区,电话\n北,13812345678\n";
    assert_eq!(text(&utf16le(csv, true)).as_deref(), Some(csv));
    assert_eq!(text(&utf16le(csv, false)).as_deref(), Some(csv));
    let (gb, _, _) = encoding_rs::GB18030.encode(csv);
    assert_eq!(text(&gb).as_deref(), Some(csv));
    assert_eq!(text(csv.as_bytes()).as_deref(), Some(csv));
    let mut bom8 = vec![0xef, 0xbb, 0xbf];
    bom8.extend(csv.as_bytes());
    assert_eq!(text(&bom8).as_deref(), Some(csv));
    // Negative twins: binary is not text.
    assert_eq!(text(&[0u8, 1, 2, 3, 0xff, 0xfe, 0x00, 0x7f]), None);
    assert_eq!(text(b"ELF\x02\x01\x01\x00\x00\x00"), None);
}

#[test]
fn gzip_zstd_and_nested_zips_are_opened() {
    let csv = b"a,b\n1,2\n";
    let zst = zstd::encode_all(&csv[..], 3).unwrap();
    let inner = zip_of(&[("inner/data.csv.gz", &gzip(csv))]);
    let outer = zip_of(&[
        ("report.csv.zst", &zst),
        ("nested.zip", &inner),
        ("dir/", b""),
    ]);
    let parts = parts(&outer, &Limits::default());
    let got = texts(&parts);
    assert!(
        got.contains(&("entry 1 > zstd".into(), "a,b\n1,2\n".into())),
        "{got:?}"
    );
    assert!(
        got.contains(&("entry 2 > entry 1 > gzip".into(), "a,b\n1,2\n".into())),
        "{got:?}"
    );
}

#[test]
fn a_compression_bomb_is_a_finding_not_an_outage() {
    let zeros = vec![b'0'; 4 * 1024 * 1024];
    let bomb = gzip(&zeros);
    let limits = Limits {
        max_total_bytes: 1024 * 1024,
        ..Limits::default()
    };
    let got = texts(&parts(&bomb, &limits));
    assert_eq!(got.len(), 1);
    assert!(
        got[0]
            .1
            .starts_with("UNREADABLE decompresses past the limit"),
        "{got:?}"
    );
    // Nesting deeper than allowed.
    let mut nested = b"x".to_vec();
    for _ in 0..8 {
        nested = gzip(&nested);
    }
    let got = texts(&parts(&nested, &Limits::default()));
    assert!(got[0].1.contains("nested deeper than 5 levels"), "{got:?}");
}

#[test]
fn what_cannot_be_read_says_so() {
    let got = texts(&parts(b"%PDF-1.7\n...", &Limits::default()));
    assert!(got[0].1.starts_with("UNREADABLE a PDF"), "{got:?}");
    let got = texts(&parts(b"PAR1\x00\x00", &Limits::default()));
    assert!(
        got[0].1.starts_with("UNREADABLE a damaged Parquet file"),
        "{got:?}"
    );
    let got = texts(&parts(
        &[0x00, 0x9f, 0x92, 0x96, 0x00, 0x01],
        &Limits::default(),
    ));
    assert!(got[0].1.starts_with("UNREADABLE binary data"), "{got:?}");
    let got = texts(&parts(&[0x1f, 0x8b, 0x08, 0x00, 0x01], &Limits::default()));
    assert!(
        got[0].1.starts_with("UNREADABLE a damaged gzip stream"),
        "{got:?}"
    );
}

/// A minimal xlsx workbook with one sheet of inline strings and numbers.
pub(crate) fn xlsx_of(rows: &[&[&str]]) -> Vec<u8> {
    let mut sheet = String::from(
        r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#,
    );
    for (r, row) in rows.iter().enumerate() {
        sheet.push_str(&format!(r#"<row r="{}">"#, r + 1));
        for (c, v) in row.iter().enumerate() {
            let col = (b'A' + c as u8) as char;
            sheet.push_str(&format!(
                r#"<c r="{col}{}" t="inlineStr"><is><t>{v}</t></is></c>"#,
                r + 1
            ));
        }
        sheet.push_str("</row>");
    }
    sheet.push_str("</sheetData></worksheet>");
    zip_of(&[
        ("[Content_Types].xml", br#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#),
        ("_rels/.rels", br#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#),
        ("xl/workbook.xml", br#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Flows" sheetId="1" r:id="rId1"/></sheets></workbook>"#),
        ("xl/_rels/workbook.xml.rels", br#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#),
        ("xl/worksheets/sheet1.xml", sheet.as_bytes()),
    ])
}

#[test]
fn xlsx_cells_are_read_as_rows() {
    let book = xlsx_of(&[&["district", "contact"], &["North", "13812345678"]]);
    let got = texts(&parts(&book, &Limits::default()));
    assert_eq!(
        got,
        [(
            "sheet 1".to_string(),
            "district,contact\nNorth,13812345678\n".to_string()
        )]
    );
}

/// A Parquet file with a text column and a number column.
pub(crate) fn parquet_of(contacts: &[&str]) -> Vec<u8> {
    use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;
    let schema = std::sync::Arc::new(
        parse_message_type("message flows { required binary contact (UTF8); required int64 n; }")
            .unwrap(),
    );
    let mut buf = Vec::new();
    let mut writer = SerializedFileWriter::new(
        &mut buf,
        schema,
        std::sync::Arc::new(WriterProperties::builder().build()),
    )
    .unwrap();
    let mut group = writer.next_row_group().unwrap();
    let values: Vec<ByteArray> = contacts.iter().map(|c| ByteArray::from(*c)).collect();
    let mut col = group.next_column().unwrap().unwrap();
    col.typed::<ByteArrayType>()
        .write_batch(&values, None, None)
        .unwrap();
    col.close().unwrap();
    let numbers: Vec<i64> = (0..contacts.len() as i64).collect();
    let mut col = group.next_column().unwrap().unwrap();
    col.typed::<Int64Type>()
        .write_batch(&numbers, None, None)
        .unwrap();
    col.close().unwrap();
    group.close().unwrap();
    writer.close().unwrap();
    buf
}

#[test]
fn parquet_columns_are_read_as_rows() {
    let file = parquet_of(&["North", "13812345678"]);
    let got = texts(&parts(&file, &Limits::default()));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "");
    assert!(got[0].1.starts_with("contact,n\n"), "{got:?}");
    assert!(got[0].1.contains("13812345678"), "{got:?}");
    // A damaged one is unreadable, not clean.
    let got = texts(&parts(&file[..file.len() / 2], &Limits::default()));
    assert!(got[0].1.starts_with("UNREADABLE"), "{got:?}");
}
