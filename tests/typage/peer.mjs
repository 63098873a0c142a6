// typage (npm age-encryption), driven by the post-quantum tests as the
// independent age implementation with hybrid keys (tests/typage.py
// installs it, pinned by package-lock.json beside this file).
//
//   node peer.mjs keygen [--x25519]      a new identity (hybrid unless --x25519)
//   node peer.mjs recipient FILE         the recipient of the identity in FILE
//   node peer.mjs encrypt RFILE [--armor]  stdin sealed to the recipients in
//                                        RFILE (one a line), to stdout
//   node peer.mjs decrypt FILE           stdin (binary or armored) opened with
//                                        the identities in FILE
//
// Keys are read from files, never taken from argv. Errors: one line on
// stderr, exit 1.
import { readFileSync } from "node:fs";
import { webcrypto } from "node:crypto";

// Debian 12's Node.js 18 has Web Crypto only under node:crypto (globalThis
// has it from Node.js 19 on), where typage and @noble look for it: set
// before typage is loaded, hence the dynamic import.
if (!globalThis.crypto)
	globalThis.crypto = webcrypto;
const age = await import("age-encryption");

function keyLines(path) {
	return readFileSync(path, "utf8").split(/\r?\n/).map((l) => l.trim())
		.filter((l) => l !== "" && !l.startsWith("#"));
}

function readStdin() {
	return new Uint8Array(readFileSync(0));
}

async function main(argv) {
	const [cmd, arg, opt] = argv;
	if (cmd === "keygen") {
		const id = arg === "--x25519" ? await age.generateX25519Identity()
			: await age.generateHybridIdentity();
		process.stdout.write(id + "\n");
	} else if (cmd === "recipient") {
		for (const id of keyLines(arg))
			process.stdout.write((await age.identityToRecipient(id)) + "\n");
	} else if (cmd === "encrypt") {
		const e = new age.Encrypter();
		for (const r of keyLines(arg))
			e.addRecipient(r);
		const sealed = await e.encrypt(readStdin());
		process.stdout.write(opt === "--armor" ? age.armor.encode(sealed) : sealed);
	} else if (cmd === "decrypt") {
		const d = new age.Decrypter();
		for (const id of keyLines(arg))
			d.addIdentity(id);
		let file = readStdin();
		const text = new TextDecoder().decode(file.subarray(0, 64)).trimStart();
		if (text.startsWith("-----BEGIN AGE ENCRYPTED FILE-----"))
			file = age.armor.decode(new TextDecoder().decode(file));
		process.stdout.write(await d.decrypt(file));
	} else {
		throw new Error("usage: peer.mjs keygen|recipient|encrypt|decrypt ...");
	}
}

main(process.argv.slice(2)).catch((e) => {
	process.stderr.write("typage: error: " + (e && e.message ? e.message : String(e)) + "\n");
	process.exit(1);
});
