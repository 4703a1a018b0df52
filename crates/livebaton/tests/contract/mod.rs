// Each test binary uses the suites it needs; the helpers of the others are unused there.
#[allow(dead_code)]
pub mod presence;
#[allow(dead_code)]
pub mod pubsub;
