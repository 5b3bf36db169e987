-- sleepless-sessions ships no schema; this is the one its SQL implies (NOTES.md), as the
-- importer's tests build it, with the indexes a careful operator would add: users by id
-- (primary key) and by email, sessions by sid (primary key).
CREATE TABLE users (
    user_id varchar(64) NOT NULL PRIMARY KEY,
    email varchar(255),
    locked tinyint NOT NULL DEFAULT 0,
    pw_hash char(40),
    pw_salt char(40),
    created datetime NOT NULL DEFAULT current_timestamp(),
    deleted datetime NULL,
    rst_code varchar(40),
    rst_expire datetime NULL,
    KEY users_email (email)
);
CREATE TABLE sessions (
    user_id varchar(64) NOT NULL,
    sid char(40) NOT NULL PRIMARY KEY,
    agent varchar(255),
    remote_ip varchar(64),
    expires datetime NOT NULL
);
