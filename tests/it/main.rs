mod conformance;
fn main(){}
