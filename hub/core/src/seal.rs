//! Electronic seals of licences (电子证照签章): the issuing department's SM2
//! signature (GB/T 32918.2, SM3 digest, the standard's default user ID
//! `1234567812345678`) over the licence's core fields, as GB/T 38540 asks
//! of an electronic seal. The issuer's public key is registered in the
//! directory (`seal_keys`); `POST /v1/verify/104/000001` with `"seal": true`
//! answers whether the licence's seal is valid.
//!
//! - [`LicenceFields`], [`message`]: what is signed, one canonical text;
//! - [`SealKey`]: a signing key (the demo's issuers derive theirs from the
//!   seed); [`verify`]: a signature against a registered public key.
//!
//! SM2 and SM3 come from RustCrypto's pure-Rust `sm2` and `sm3` crates.

use sm2::dsa::signature::Verifier;
use sm2::dsa::{Signature, SigningKey, VerifyingKey};
use sm2::elliptic_curve::PrimeField;
use sm2::elliptic_curve::group::Group;
use sm2::elliptic_curve::ops::Reduce;
use sm2::elliptic_curve::point::AffineCoordinates;
use sm2::{AffinePoint, ProjectivePoint, Scalar, U256};

/// How a seal is made, as answers and the directory name it.
pub const ALGORITHM: &str = "SM2-SM3";
/// The signer's distinguishing identifier: GB/T 32918's default user ID.
pub const USER_ID: &str = "1234567812345678";
/// The items a seal covers, and the item that carries it.
pub const SIGNED_ITEMS: [&str; 8] = [
    "licence_no",
    "licence_type",
    "holder_id",
    "holder_name",
    "issuer_code",
    "issue_date",
    "valid_from",
    "valid_to",
];
pub const SEAL_ITEM: &str = "signature";

/// A licence's core fields, dates as `YYYY-MM-DD` (`valid_to` empty for a
/// licence without end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LicenceFields<'a> {
    pub licence_no: &'a str,
    pub licence_type: &'a str,
    pub holder_id: &'a str,
    pub holder_name: &'a str,
    pub issuer_code: &'a str,
    pub issue_date: &'a str,
    pub valid_from: &'a str,
    pub valid_to: &'a str,
}

/// The text a seal signs: the fields in [`SIGNED_ITEMS`] order, each line
/// `item=value`, UTF-8, `\n` after each (written into `out`, cleared first).
pub fn message(f: &LicenceFields<'_>, out: &mut String) {
    out.clear();
    for (item, value) in SIGNED_ITEMS.iter().zip([
        f.licence_no,
        f.licence_type,
        f.holder_id,
        f.holder_name,
        f.issuer_code,
        f.issue_date,
        f.valid_from,
        f.valid_to,
    ]) {
        out.push_str(item);
        out.push('=');
        out.push_str(value);
        out.push('\n');
    }
}

/// Why a seal does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("the registered public key is not an SM2 point")]
    BadKey,
    #[error("the seal is not an SM2 signature (128 hex digits, r ‖ s)")]
    Malformed,
    #[error("the seal does not match the licence's fields and the issuer's key")]
    Invalid,
}

/// An issuer's signing key.
///
/// Signing is GB/T 32918.2's algorithm written out over the `sm2` crate's
/// field and group arithmetic, with two savings the crate's generic signer
/// does not make, because the demo seals half a million licences at scale 1
/// (the crate's signer took 256 µs a seal: 70 s of datagen): `k·G` from a
/// fixed-base table (32 additions instead of 256 doublings and 64
/// additions), and `Z_A` and `(1 + d)⁻¹` computed once per key. The nonce
/// is deterministic (HMAC-SM3 of the key over the digest), so datagen stays
/// reproducible. The table lookups are not constant-time: this signs for
/// the demo's issuers, whose keys are public anyway; a real issuer seals in
/// its own seal system and registers only its public key. Every seal is
/// checked in the tests by the crate's own verifier.
pub struct SealKey {
    signing: SigningKey,
    d: Scalar,
    inv_1_plus_d: Scalar,
    za: [u8; 32],
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealKey")
            .field("public_key", &self.public_key())
            .finish()
    }
}

/// The curve's a, b and base point, as `Z_A` hashes them (GB/T 32918.5).
const CURVE_A: &str = "FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC";
const CURVE_B: &str = "28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93";
const G_X: &str = "32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7";
const G_Y: &str = "BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0";

/// `TABLE[i][j] = j · 256^i · G`, affine: 32 rows of 256 points (0.6 MB),
/// built once per process.
fn table() -> &'static [Vec<AffinePoint>] {
    static TABLE: std::sync::OnceLock<Vec<Vec<AffinePoint>>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut base = ProjectivePoint::generator();
        (0..32)
            .map(|_| {
                let mut row = vec![ProjectivePoint::identity(); 256];
                for j in 1..256 {
                    row[j] = row[j - 1] + base;
                }
                base = row[255] + base;
                row.iter().map(|p| p.to_affine()).collect()
            })
            .collect()
    })
}

/// `k · G` by the table, a byte of `k` at a time: 32 additions.
fn mul_generator(k: &Scalar) -> ProjectivePoint {
    let bytes = k.to_repr();
    let mut acc = ProjectivePoint::identity();
    for (i, row) in table().iter().enumerate() {
        let byte = bytes[31 - i];
        if byte != 0 {
            acc += row[byte as usize];
        }
    }
    acc
}

fn scalar_of(bytes: &[u8]) -> Scalar {
    let mut b = sm2::FieldBytes::default();
    b.copy_from_slice(bytes);
    <Scalar as Reduce<U256>>::reduce_bytes(&b)
}

impl SealKey {
    /// The key of a 32-byte secret scalar; `None` if it is zero or not
    /// below the curve's order (derive another).
    pub fn from_secret(secret: &[u8; 32]) -> Option<SealKey> {
        let signing = SigningKey::from_slice(USER_ID, secret).ok()?;
        let d: Scalar = *signing.as_nonzero_scalar().as_ref();
        let inv_1_plus_d = Option::from((Scalar::ONE + d).invert())?;
        let point = signing.verifying_key().to_sec1_bytes();
        let mut z = sm3::Sm3::new();
        use sm3::Digest;
        z.update(((USER_ID.len() * 8) as u16).to_be_bytes());
        z.update(USER_ID.as_bytes());
        for constant in [CURVE_A, CURVE_B, G_X, G_Y] {
            z.update(hex::decode(constant).expect("hex constants"));
        }
        z.update(&point[1..]);
        Some(SealKey {
            signing,
            d,
            inv_1_plus_d,
            za: z.finalize().into(),
        })
    }

    /// The seal of `message`: hex of the signature's r ‖ s (GB/T 32918.2
    /// §6.1), with a deterministic nonce.
    pub fn sign(&self, message: &str) -> String {
        use hmac::Mac;
        use sm3::Digest;
        let mut h = sm3::Sm3::new();
        h.update(self.za);
        h.update(message.as_bytes());
        let digest = h.finalize();
        let e = scalar_of(&digest);
        for counter in 0u32.. {
            let mut mac =
                hmac::Hmac::<sm3::Sm3>::new_from_slice(&self.d.to_repr()).expect("any key length");
            mac.update(&digest);
            mac.update(&counter.to_be_bytes());
            let k = scalar_of(&mac.finalize().into_bytes());
            if bool::from(k.is_zero()) {
                continue;
            }
            let x1 = scalar_of(&mul_generator(&k).to_affine().x());
            let r = e + x1;
            if bool::from(r.is_zero()) || bool::from((r + k).is_zero()) {
                continue;
            }
            let s = self.inv_1_plus_d * (k - r * self.d);
            if bool::from(s.is_zero()) {
                continue;
            }
            let mut out = r.to_repr().to_vec();
            out.extend_from_slice(&s.to_repr());
            return hex::encode(out);
        }
        unreachable!("some counter gives a usable nonce")
    }

    /// The public key to register: hex of the uncompressed SEC1 point.
    pub fn public_key(&self) -> String {
        hex::encode(self.signing.verifying_key().to_sec1_bytes())
    }
}

/// Whether `seal` (hex r ‖ s) is `public_key`'s signature of `message`.
pub fn verify(public_key: &str, message: &str, seal: &str) -> Result<(), SealError> {
    let point = hex::decode(public_key.trim()).map_err(|_| SealError::BadKey)?;
    let key = VerifyingKey::from_sec1_bytes(USER_ID, &point).map_err(|_| SealError::BadKey)?;
    let bytes = hex::decode(seal.trim()).map_err(|_| SealError::Malformed)?;
    let sig = Signature::from_slice(&bytes).map_err(|_| SealError::Malformed)?;
    key.verify(message.as_bytes(), &sig)
        .map_err(|_| SealError::Invalid)
}

/// Whether `text` reads as a registrable public key.
pub fn check_public_key(text: &str) -> Result<(), SealError> {
    let point = hex::decode(text.trim()).map_err(|_| SealError::BadKey)?;
    VerifyingKey::from_sec1_bytes(USER_ID, &point)
        .map(|_| ())
        .map_err(|_| SealError::BadKey)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GB/T 32918.5-2017, Annex A (A.2): the signature example on the
    /// recommended curve, user ID 1234567812345678, message "message
    /// digest": the public key of the standard's private key, and the
    /// standard's signature (made with its random k), verify.
    #[test]
    fn the_standards_example_verifies() {
        let d: [u8; 32] =
            hex::decode("3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8")
                .unwrap()
                .try_into()
                .unwrap();
        let key = SealKey::from_secret(&d).unwrap();
        assert_eq!(
            key.public_key(),
            "0409f9df311e5421a150dd7d161e4bc5c672179fad1833fc076bb08ff356f35020\
             ccea490ce26775a52dc6ea718cc1aa600aed05fbf35e084a6632f6072da9ad13"
        );
        let r = "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3";
        let s = "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA";
        let standard = format!("{r}{s}");
        assert_eq!(
            verify(&key.public_key(), "message digest", &standard),
            Ok(())
        );
        assert_eq!(
            verify(&key.public_key(), "message digesT", &standard),
            Err(SealError::Invalid)
        );
        // Our own signature of the same message verifies too.
        let ours = key.sign("message digest");
        assert_eq!(ours.len(), 128);
        assert_eq!(verify(&key.public_key(), "message digest", &ours), Ok(()));
    }

    #[test]
    fn the_fixed_base_table_multiplies_like_the_group() {
        for seed in [1u8, 2, 77, 200, 255] {
            let k = scalar_of(&[seed; 32]);
            assert_eq!(
                mul_generator(&k).to_affine(),
                (ProjectivePoint::generator() * k).to_affine()
            );
        }
        assert_eq!(
            mul_generator(&Scalar::ONE).to_affine(),
            AffinePoint::GENERATOR
        );
    }

    #[test]
    fn a_tampered_field_or_another_issuer_fails() {
        let issuer = SealKey::from_secret(&[7; 32]).unwrap();
        let other = SealKey::from_secret(&[8; 32]).unwrap();
        let fields = LicenceFields {
            licence_no: "YZ3101042026000001",
            licence_type: "营业执照",
            holder_id: "91310104MA1FL0000X",
            holder_name: "上海某某科技有限公司",
            issuer_code: "sh-scjgj",
            issue_date: "2026-01-05",
            valid_from: "2026-01-05",
            valid_to: "",
        };
        let mut text = String::new();
        message(&fields, &mut text);
        assert!(text.starts_with("licence_no=YZ3101042026000001\nlicence_type=营业执照\n"));
        assert!(text.ends_with("valid_to=\n"));
        let seal = issuer.sign(&text);
        assert_eq!(seal, issuer.sign(&text), "deterministic");
        assert_eq!(verify(&issuer.public_key(), &text, &seal), Ok(()));
        let mut tampered = String::new();
        message(
            &LicenceFields {
                holder_name: "上海另一家公司",
                ..fields
            },
            &mut tampered,
        );
        assert_eq!(
            verify(&issuer.public_key(), &tampered, &seal),
            Err(SealError::Invalid)
        );
        assert_eq!(
            verify(&other.public_key(), &text, &seal),
            Err(SealError::Invalid)
        );
        assert_eq!(
            verify(&issuer.public_key(), &text, "zz"),
            Err(SealError::Malformed)
        );
        assert_eq!(verify("04ab", &text, &seal), Err(SealError::BadKey));
        assert!(SealKey::from_secret(&[0; 32]).is_none());
        assert!(
            SealKey::from_secret(&[0xff; 32]).is_none(),
            "above the order"
        );
    }
}
