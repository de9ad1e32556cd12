//! PDFs written for tests, byte by byte, so that a test says exactly what is on a page and
//! in which order: each piece of text is a text object of its own, drawn in the order given
//! (PDFium reads characters in the order they are drawn), in Helvetica, which every PDF
//! reader has without the file embedding it.

/// Text on a page: `size`-point Helvetica whose baseline starts at (`x`, `y`), in points from
/// the page's bottom left corner.
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    pub x: f32,
    pub y: f32,
    pub size: f32,
    pub text: String,
}

impl Placed {
    /// 10-point text at (`x`, `y`).
    pub fn new(x: f32, y: f32, text: impl Into<String>) -> Self {
        Self {
            x,
            y,
            size: 10.0,
            text: text.into(),
        }
    }
}

/// A page `width` by `height` points, with text on it.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub width: f32,
    pub height: f32,
    pub text: Vec<Placed>,
}

impl Page {
    /// A US Letter page: 612 by 792 points.
    pub fn letter(text: Vec<Placed>) -> Self {
        Self {
            width: 612.0,
            height: 792.0,
            text,
        }
    }
}

/// A one-page PDF with a heading ("Fruit prices", baseline 740) over a table of three
/// columns (x 72, 200, 300) and four rows 14 points apart (baselines 700 to 658): `Item
/// Quantity Price`, then `Apples 3 1.20`, `Pears 12 0.80` and `Plums 7 2.45`, each cell a
/// text object of its own, as spreadsheets export them.
pub fn fruit_prices() -> Vec<u8> {
    let rows = [
        ["Item", "Quantity", "Price"],
        ["Apples", "3", "1.20"],
        ["Pears", "12", "0.80"],
        ["Plums", "7", "2.45"],
    ];
    let mut text = vec![Placed::new(72.0, 740.0, "Fruit prices")];
    for (r, row) in rows.iter().enumerate() {
        let y = 700.0 - 14.0 * r as f32;
        for (x, cell) in [72.0, 200.0, 300.0].into_iter().zip(row) {
            text.push(Placed::new(x, y, *cell));
        }
    }
    pdf(&[Page::letter(text)])
}

/// A PDF of `pages`. Text is written in Windows-1252 (WinAnsiEncoding) as far as Latin-1
/// and `•` go; any other character is written as `?`.
pub fn pdf(pages: &[Page]) -> Vec<u8> {
    let mut objects = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        // The page tree, once the pages' object numbers are known.
        String::new(),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_owned(),
    ];
    let mut kids = Vec::new();
    for page in pages {
        let content: String = page
            .text
            .iter()
            .map(|t| {
                format!(
                    "BT /F1 {} Tf 1 0 0 1 {} {} Tm ({}) Tj ET\n",
                    t.size,
                    t.x,
                    t.y,
                    pdf_string(&t.text)
                )
            })
            .collect();
        objects.push(format!(
            "<< /Length {} >>\nstream\n{content}endstream",
            content.len()
        ));
        let contents = objects.len();
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {} {}] \
             /Resources << /Font << /F1 3 0 R >> >> /Contents {contents} 0 R >>",
            page.width, page.height
        ));
        kids.push(format!("{} 0 R", objects.len()));
    }
    objects[1] = format!(
        "<< /Type /Pages /Kids [{}] /Count {} >>",
        kids.join(" "),
        pages.len()
    );
    let mut pdf = String::from("%PDF-1.4\n");
    let mut offsets = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf += &format!("{} 0 obj\n{object}\nendobj\n", i + 1);
    }
    let xref = pdf.len();
    let size = objects.len() + 1;
    pdf += &format!("xref\n0 {size}\n0000000000 65535 f \n");
    for offset in offsets {
        pdf += &format!("{offset:010} 00000 n \n");
    }
    pdf += &format!("trailer\n<< /Size {size} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n");
    pdf.into_bytes()
}

/// A PDF string's content: Windows-1252 bytes, `\`, `(` and `)` escaped, and every byte
/// outside printable ASCII in octal, so that the file stays ASCII.
fn pdf_string(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        let byte = match c {
            '•' => 0x95,
            c => u8::try_from(u32::from(c)).unwrap_or(b'?'),
        };
        match byte {
            b'\\' | b'(' | b')' => {
                out.push('\\');
                out.push(char::from(byte));
            }
            0x20..=0x7e => out.push(char::from(byte)),
            _ => out.push_str(&format!("\\{byte:03o}")),
        }
    }
    out
}
