//! TEMPORARY stand-in until the real redactor lands (wt-process).
use std::borrow::Cow;
#[derive(Debug, Default, Clone)]
pub struct Redactor {
    values: Vec<Vec<u8>>,
}
impl Redactor {
    pub fn new(values: impl IntoIterator<Item = Vec<u8>>) -> Self {
        Redactor {
            values: values.into_iter().filter(|v| !v.is_empty()).collect(),
        }
    }
    pub fn redact<'a>(&self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        Cow::Borrowed(bytes)
    }
    pub fn redact_str(&self, s: &str) -> String {
        let mut out = s.to_string();
        for v in &self.values {
            out = out.replace(&*String::from_utf8_lossy(v), "***");
        }
        out
    }
}
