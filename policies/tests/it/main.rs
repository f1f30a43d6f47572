//! Property tests of the decision engine: the rules of DESIGN §4 hold for
//! any lists and any request drawn from a small universe of departments,
//! resources, items, matters and modes.

mod decide;
