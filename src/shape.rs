//! A tensor's dimensions, kept inline: no allocation per tensor at open or per `get`.

/// Dimensions, outermost first. Up to six live inline (every dense model tensor has fewer);
/// more spill to the heap. Cloning an inline shape is a copy, not a reference-count update.
pub type Shape = smallvec::SmallVec<[u64; 6]>;
