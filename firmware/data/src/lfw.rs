//! LFW (deep-funneled): identity folders, `people.txt` folds and `pairs.txt` verification pairs.
//!
//! `people.txt`: a fold count, then per fold a person count and `name<TAB>images` lines.
//! `pairs.txt`: `folds<TAB>n`, then per fold `n` matched lines `name i j` and `n` mismatched lines
//! `name1 i name2 j`. Images live at `images/<name>/<name>_<NNNN>.jpg`.

use crate::error::{DataError, read_text};
use crate::sample::SampleRef;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageId {
    pub name: String,
    pub number: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pair {
    pub a: ImageId,
    pub b: ImageId,
    pub same: bool,
}

pub struct Lfw {
    pub root: PathBuf,
    /// Per fold, `(name, image count)`.
    pub people_folds: Vec<Vec<(String, u32)>>,
    /// Per fold, the matched then mismatched pairs.
    pub pair_folds: Vec<Vec<Pair>>,
}

struct Lines<'a> {
    path: &'a Path,
    iter: std::iter::Enumerate<std::str::Lines<'a>>,
}

impl<'a> Lines<'a> {
    fn new(path: &'a Path, text: &'a str) -> Self {
        Self { path, iter: text.lines().enumerate() }
    }

    fn fields(&mut self, what: &str) -> Result<(usize, Vec<&'a str>), DataError> {
        loop {
            let Some((i, line)) = self.iter.next() else {
                return Err(DataError::Format { path: self.path.into(), line: 0, message: format!("file ends early, expected {what}") });
            };
            let f: Vec<&str> = line.split_whitespace().collect();
            if !f.is_empty() {
                return Ok((i + 1, f));
            }
        }
    }

    fn error(&self, line: usize, message: String) -> DataError {
        DataError::Format { path: self.path.into(), line, message }
    }

    fn number(&self, line: usize, s: &str, what: &str) -> Result<u32, DataError> {
        s.parse().map_err(|_| self.error(line, format!("expected {what} (an integer), found `{s}`")))
    }
}

fn parse_people(path: &Path, text: &str) -> Result<Vec<Vec<(String, u32)>>, DataError> {
    let mut lines = Lines::new(path, text);
    let (l, f) = lines.fields("the fold count")?;
    let folds = lines.number(l, f[0], "the fold count")?;
    (0..folds)
        .map(|_| {
            let (l, f) = lines.fields("a fold's person count")?;
            let n = lines.number(l, f[0], "a fold's person count")?;
            (0..n)
                .map(|_| {
                    let (l, f) = lines.fields("`name count`")?;
                    match f.as_slice() {
                        [name, count] => Ok((name.to_string(), lines.number(l, count, "an image count")?)),
                        _ => Err(lines.error(l, format!("expected `name count`, found {} fields", f.len()))),
                    }
                })
                .collect()
        })
        .collect()
}

fn parse_pairs(path: &Path, text: &str) -> Result<Vec<Vec<Pair>>, DataError> {
    let mut lines = Lines::new(path, text);
    let (l, f) = lines.fields("`folds pairs-per-half`")?;
    let (folds, n) = match f.as_slice() {
        [a, b] => (lines.number(l, a, "the fold count")?, lines.number(l, b, "pairs per half-fold")?),
        _ => return Err(lines.error(l, "expected `folds pairs-per-half`".into())),
    };
    let id = |name: &str, n: u32| ImageId { name: name.to_string(), number: n };
    (0..folds)
        .map(|_| {
            (0..2 * n)
                .map(|k| {
                    let (l, f) = lines.fields("a pair")?;
                    match (k < n, f.as_slice()) {
                        (true, [name, i, j]) => Ok(Pair {
                            a: id(name, lines.number(l, i, "an image number")?),
                            b: id(name, lines.number(l, j, "an image number")?),
                            same: true,
                        }),
                        (false, [n1, i, n2, j]) => Ok(Pair {
                            a: id(n1, lines.number(l, i, "an image number")?),
                            b: id(n2, lines.number(l, j, "an image number")?),
                            same: false,
                        }),
                        (same, _) => Err(lines.error(
                            l,
                            format!("expected a {} pair, found {} fields", if same { "matched (3-field)" } else { "mismatched (4-field)" }, f.len()),
                        )),
                    }
                })
                .collect()
        })
        .collect()
}

impl Lfw {
    /// Open an LFW root holding `images/`, `people.txt` and `pairs.txt`.
    pub fn open(root: &Path) -> Result<Self, DataError> {
        let people = root.join("people.txt");
        let pairs = root.join("pairs.txt");
        Ok(Self {
            root: root.into(),
            people_folds: parse_people(&people, &read_text(&people)?)?,
            pair_folds: parse_pairs(&pairs, &read_text(&pairs)?)?,
        })
    }

    pub fn image_path(&self, id: &ImageId) -> PathBuf {
        self.root.join("images").join(&id.name).join(format!("{}_{:04}.jpg", id.name, id.number))
    }

    /// Every image of the people in the given folds (1-based), identities numbered densely in
    /// name order; also returns the names by identity index.
    pub fn people_samples(&self, folds: &[usize]) -> (Vec<SampleRef>, Vec<String>) {
        let people: BTreeMap<&str, u32> = folds
            .iter()
            .filter_map(|f| self.people_folds.get(f.wrapping_sub(1)))
            .flatten()
            .map(|(n, c)| (n.as_str(), *c))
            .collect();
        let mut refs = Vec::new();
        let mut names = Vec::new();
        for (identity, (name, count)) in people.into_iter().enumerate() {
            names.push(name.to_string());
            for number in 1..=count {
                let image = self.image_path(&ImageId { name: name.to_string(), number });
                refs.push(SampleRef { image, mask: None, identity: identity as u32, landmarks: None, yaw: None });
            }
        }
        (refs, names)
    }

    /// The pairs of fold `fold` (1-based).
    pub fn pairs(&self, fold: usize) -> &[Pair] {
        self.pair_folds.get(fold.wrapping_sub(1)).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_and_pairs_parse_and_report_the_bad_line() {
        let p = Path::new("people.txt");
        let folds = parse_people(p, "2\n1\nAl_A\t2\n2\nBo_B\t1\nCy_C\t3\n").unwrap();
        assert_eq!(folds[1], vec![("Bo_B".into(), 1), ("Cy_C".into(), 3)]);
        let err = parse_people(p, "1\n1\nAl_A\tx\n").unwrap_err().to_string();
        assert!(err.contains("people.txt:3") && err.contains("`x`"), "{err}");

        let q = Path::new("pairs.txt");
        let pairs = parse_pairs(q, "1\t1\nAl_A\t1\t2\nAl_A\t1\tBo_B\t1\n").unwrap();
        assert!(pairs[0][0].same && !pairs[0][1].same);
        assert_eq!(pairs[0][1].b, ImageId { name: "Bo_B".into(), number: 1 });
        let err = parse_pairs(q, "1\t1\nAl_A\t1\tBo_B\t1\n").unwrap_err().to_string();
        assert!(err.contains("pairs.txt:2") && err.contains("matched"), "{err}");
    }
}
