//! Accounts: roles, password hashing, sign-in throttling, bearer tokens, random secrets, and what admins and people
//! may do to accounts (`people`).

mod mail;
mod passwords;
mod people;
mod random;
mod redis_throttle;
mod role;
mod sign_in_throttle;
mod throttle;
mod tokens;

pub use mail::{Mail, MailError, Mailer, MemoryMailer, SmtpMailer};
pub use passwords::{
    HASH_PATIENCE, HashPermit, HashingBusy, MIN_PASSWORD_LEN, PasswordHasher, hash_password, verify_password, warm_up,
};
pub use people::{
    AccountError, INVITATION_TTL_MS, IssuedLink, LINK_PATH, MAX_EMAIL_CHARS, MAX_NAME_CHARS, MAX_PASSWORD_CHARS,
    PEOPLE_TOPIC, People, PeopleChanged, RESET_TTL_MS, article, valid_email, valid_name, valid_password,
};
pub use random::{generate_password, random_token, sha256_hex};
pub use redis_throttle::{RedisAttempt, RedisThrottle};
pub use role::Role;
pub use sign_in_throttle::{SignInAttempt, SignInThrottle};
pub use throttle::{Attempt, FIRST_DELAY, Throttle, ThrottleConfig, Throttled, retry_after_secs};
pub use tokens::{Bearer, TOKEN_TTL_MS, TokenSigner};
