mod stub;
pub use stub::*;
