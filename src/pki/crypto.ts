// Loads reflect-metadata and hands @peculiar/x509 its WebCrypto provider; import this before using x509.
import "reflect-metadata";
import { Crypto } from "@peculiar/webcrypto";
import * as x509 from "@peculiar/x509";

export const webcrypto = new Crypto();
x509.cryptoProvider.set(webcrypto);

export { x509 };
